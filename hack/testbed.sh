#!/usr/bin/env bash
# Idempotent test-bed setup for ovsmesh on a fresh Debian machine of this kind:
#   1. Debian packages the tests and the demo use (OVS userspace datapath, iproute2, iperf3, ...).
#   2. etcd, kube-apiserver, kube-controller-manager and kubectl built from the Go module proxy
#      into a cache OUTSIDE the repository, keyed by version, so only the first run pays the build.
#   3. The real-node binaries, cached the same way: kubelet, kube-scheduler and kube-proxy (same
#      throwaway module as the control plane) and containerd, its runc shim and ctr (CGO off).
# Usage: hack/testbed.sh            (everything)
#        hack/testbed.sh assets-dir (print the KUBEBUILDER_ASSETS directory and exit)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
CACHE=${OVSMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ovsmesh}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-2.4.2}
ASSETS="$CACHE/k8s-v$K8S_VERSION-etcd-v$ETCD_VERSION"
# The node binaries live beside the control plane's, in a directory of their own so
# KUBEBUILDER_ASSETS stays what envtest expects.
NODEBIN="$CACHE/nodes-k8s-v$K8S_VERSION-containerd-v$CONTAINERD_VERSION"

if [ "${1:-}" = assets-dir ]; then echo "$ASSETS"; exit 0; fi
if [ "${1:-}" = node-bin-dir ]; then echo "$NODEBIN"; exit 0; fi

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- 1. Debian packages --------------------------------------------------------------------
PKGS=(openvswitch-switch openvswitch-common iproute2 iptables nftables ethtool iperf3
      containernetworking-plugins tcpdump iputils-ping procps openssl runc util-linux)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # policy-rc.d keeps the package from starting the system-wide OVS daemons: every test runs its own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d; trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT; fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# --- 2. control-plane binaries from the Go module proxy ------------------------------------
mkdir -p "$ASSETS"
if [ ! -x "$ASSETS/etcd" ]; then
  log "building etcd v$ETCD_VERSION into $ASSETS (about 1.5 min the first time)"
  W=$(mktemp -d); trap 'rm -rf "$W"' RETURN 2>/dev/null || true
  cp "$HERE/etcd/go.mod" "$HERE/etcd/go.sum" "$W/"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$W/tools.go"
  (cd "$W" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags='-s -w' -o "$ASSETS/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$ASSETS/etcd.tmp" "$ASSETS/etcd"; rm -rf "$W"
fi

# build_k8s DIR CMD... builds k8s.io/kubernetes/cmd/CMD into DIR for every CMD not there yet.
build_k8s() {
  local out=$1; shift
  local CMDS=()
  for c in "$@"; do [ -x "$out/$c" ] || CMDS+=("$c"); done
  if [ ${#CMDS[@]} -eq 0 ]; then log "$* cached in $out"; return; fi
  log "building ${CMDS[*]} v$K8S_VERSION into $out (kube-apiserver takes 6-14 min on 2 cores the first time, kubelet 1-4 min)"
  # k8s.io/kubernetes carries replace directives, so `go install` refuses it: build from a throwaway
  # module (hack/k8s/go.mod) that requires it and replaces every staging module with v0.X.Y.
  W=$(mktemp -d)
  cp "$HERE/k8s/go.mod" "$HERE/k8s/go.sum" "$W/"
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'; } > "$W/tools.go"
  MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
  LD="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD="$LD -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in "${CMDS[@]}"; do
    t0=$(date +%s)
    (cd "$W" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$LD" -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$out/$c.tmp" "$out/$c"
    log "built $c in $(( $(date +%s) - t0 )) s"
  done
  rm -rf "$W"
}
build_k8s "$ASSETS" kube-apiserver kubectl kube-controller-manager
log "KUBEBUILDER_ASSETS=$ASSETS"

# --- 3. real-node binaries -------------------------------------------------------------------
mkdir -p "$NODEBIN"
build_k8s "$NODEBIN" kubelet kube-scheduler kube-proxy
CTRD=()
for c in containerd containerd-shim-runc-v2 ctr; do [ -x "$NODEBIN/$c" ] || CTRD+=("$c"); done
if [ ${#CTRD[@]} -gt 0 ]; then
  log "building ${CTRD[*]} v$CONTAINERD_VERSION into $NODEBIN (about 1.5 min the first time)"
  W=$(mktemp -d)
  cp "$HERE/containerd/go.mod" "$HERE/containerd/go.sum" "$W/"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/containerd/containerd/v2/cmd/containerd"\n' > "$W/tools.go"
  P=github.com/containerd/containerd/v2
  for c in "${CTRD[@]}"; do
    (cd "$W" && CGO_ENABLED=0 go build -mod=mod -trimpath -tags "no_btrfs no_devmapper no_zfs" \
      -ldflags "-s -w -X $P/version.Version=v$CONTAINERD_VERSION -X $P/version.Revision=proxy" -o "$NODEBIN/$c.tmp" "$P/cmd/$c")
    mv "$NODEBIN/$c.tmp" "$NODEBIN/$c"
  done
  rm -rf "$W"
else
  log "containerd v$CONTAINERD_VERSION cached in $NODEBIN"
fi
log "node binaries in $NODEBIN"
