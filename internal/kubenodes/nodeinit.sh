#!/bin/sh
# The holder of one node's mount and UTS namespaces. Started by node.go as
#   nsenter --net=/run/netns/NS unshare --mount --uts --propagation private -- sh nodeinit.sh DIR NAME
# it builds the node's view of the filesystem, touches DIR/ns-ready and sleeps; the node's
# daemons join it with `nsenter -t PID -m -n -u`. When the last process of the namespace
# exits, every mount below disappears with it: nothing is mounted in the root namespace.
set -eu
D=$1; NAME=$2
# 1. A sysfs of this network namespace (as `ip netns exec` makes), keeping the cgroup
#    hierarchies under it; --move needs a private parent, so before make-rshared.
mkdir -p "$D/mnt/cgkeep"
mount --rbind /sys/fs/cgroup "$D/mnt/cgkeep"
umount -l /sys
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount --move "$D/mnt/cgkeep" /sys/fs/cgroup
# 2. The kubelet rewrites these global (not per-namespace) sysctls unless they already read
#    as it wants: show it node-local files, so the machine's own values are never touched.
mkdir -p "$D/sysctl"
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
          kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  k=${kv%=*}; f=$D/sysctl/$(echo "$k" | tr / .); echo "${kv#*=}" > "$f"; mount --bind "$f" "/proc/sys/$k"
done
# 3. Shared propagation inside this namespace only: kubelet volume mounts must reach containers.
mount --make-rshared /
# 4. A private /run; copy-on-write /etc, /opt and /var, so new mount points never touch the host.
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mkdir -p /run/lock /run/netns
for d in etc opt var; do
  mkdir -p "$D/ov/$d/u" "$D/ov/$d/w"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$D/ov/$d/u,workdir=$D/ov/$d/w" "/$d"
done
# 5. Plain per-node directories at the canonical paths (the overlayfs snapshotter cannot sit
#    on overlayfs; the test bed reads the CNI and OVS files from the host side).
for m in cni-conf:/etc/cni/net.d cni-bin:/opt/cni/bin kubelet:/var/lib/kubelet containerd:/var/lib/containerd \
         cni-state:/var/lib/cni log:/var/log ovs:/run/openvswitch; do
  src=$D/${m%%:*}; dst=${m#*:}; mkdir -p "$src" "$dst"; mount --bind "$src" "$dst"
done
hostname "$NAME"
touch "$D/ns-ready"
exec sleep infinity
