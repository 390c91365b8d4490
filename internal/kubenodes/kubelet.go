package kubenodes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/images"
	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// containerdConfig is the node's containerd configuration (version 3, which containerd 2.4
// accepts). restrict_oom_score_adj: this machine's bounding set lacks CAP_SYS_RESOURCE, so
// runc cannot give the pause container the oom_score_adj -998 the kubelet asks for and every
// sandbox would fail ("can't get final child's PID from pipe"); containerd clamps instead.
const containerdConfig = `version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "%s"
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/opt/cni/bin"]
      conf_dir = "/etc/cni/net.d"
`

// kubeletConfig: cgroup v1 must be allowed explicitly since 1.35 (failCgroupV1), the cgroup
// root is the node's own, and eviction thresholds are low enough for a shared disk.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%s
cgroupsPerQOS: true
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
resolvConf: /etc/resolv.conf
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
`

// kubeProxyConfig: nftables mode. bindAddress stays 0.0.0.0 (it overrides the node IP, it is
// not a listen address); conntrack maxPerCore 0 leaves the global nf_conntrack_max alone;
// oomScoreAdj 0 because -999 needs CAP_SYS_RESOURCE.
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clusterCIDR: %s
hostnameOverride: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection: {kubeconfig: %s}
conntrack: {maxPerCore: 0, min: 0}
oomScoreAdj: 0
nftables: {minSyncPeriod: 100ms}
`

// Ctr runs ctr against the node's containerd, in the k8s.io namespace the CRI uses.
func (n *Node) Ctr(ctx context.Context, args ...string) (string, error) {
	return n.Exec(ctx, append([]string{filepath.Join(n.c.nodeBin, "ctr"), "-a", "/run/containerd/containerd.sock", "-n", "k8s.io"}, args...)...)
}

func (n *Node) startContainerd(ctx context.Context) error {
	cfg := filepath.Join(n.Dir, "containerd.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(containerdConfig, images.PauseRef)), 0o644); err != nil {
		return err
	}
	var err error
	// The runc shim is found on PATH.
	if n.containerd, err = n.start("containerd", []string{"PATH=" + n.c.nodeBin + ":" + os.Getenv("PATH")},
		filepath.Join(n.c.nodeBin, "containerd"), "--config", cfg); err != nil {
		return err
	}
	if err := proc.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		_, err := n.Ctr(ctx, "version")
		return err == nil || n.containerd.Exited()
	}); err != nil || n.containerd.Exited() {
		return fmt.Errorf("%s: containerd is not answering on /run/containerd/containerd.sock (%v); its log %s ends:\n%s",
			n.Name, err, n.containerd.Log, n.containerd.Tail(10))
	}
	var tars []string
	for _, s := range images.All {
		tars = append(tars, filepath.Join(n.c.imageDir, s.Name+".tar"))
	}
	tars = append(tars, filepath.Join(n.c.imageDir, "pause.tar"), filepath.Join(n.c.imageDir, "alt", images.Agent.Name+".tar"))
	for _, t := range tars {
		if _, err := n.Ctr(ctx, "images", "import", t); err != nil {
			return fmt.Errorf("%s: importing %s: %w", n.Name, t, err)
		}
	}
	out, err := n.Ctr(ctx, "images", "ls", "-q")
	if err != nil {
		return err
	}
	for _, ref := range []string{images.PauseRef, images.Agent.Repository + ":" + ImageTag, images.Operator.Repository + ":" + ImageTag} {
		if !strings.Contains(out, ref) {
			return fmt.Errorf("%s: image %s not in containerd after the import (have %q)", n.Name, ref, out)
		}
	}
	return nil
}

func (n *Node) startKubelet(ctx context.Context) error {
	kc := filepath.Join(n.Dir, "kubelet.kubeconfig")
	if err := n.c.writeKubeconfig(kc, "system:node:"+n.Name); err != nil {
		return err
	}
	cfg := filepath.Join(n.Dir, "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(kubeletConfig, n.cgroup)), 0o644); err != nil {
		return err
	}
	var err error
	if n.kubelet, err = n.start("kubelet", nil, filepath.Join(n.c.nodeBin, "kubelet"), "--config", cfg, "--kubeconfig", kc,
		"--root-dir", "/var/lib/kubelet", "--hostname-override", n.Name, "--node-ip", n.IP, "-v=1"); err != nil {
		return err
	}
	if err := proc.WaitFor(ctx, 60*time.Second, 200*time.Millisecond, func() bool {
		_, err := n.c.Kubectl(ctx, "get", "node", n.Name)
		return err == nil || n.kubelet.Exited()
	}); err != nil || n.kubelet.Exited() {
		return fmt.Errorf("%s: the kubelet did not register the Node (%v); its log %s ends:\n%s", n.Name, err, n.kubelet.Log, n.kubelet.Tail(10))
	}
	return nil
}

func (n *Node) startKubeProxy(ctx context.Context) error {
	kc := filepath.Join(n.Dir, "kube-proxy.kubeconfig")
	if err := n.c.writeKubeconfig(kc, "system:kube-proxy"); err != nil {
		return err
	}
	cfg := filepath.Join(n.Dir, "kube-proxy.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(kubeProxyConfig, ClusterCIDR, n.Name, kc)), 0o644); err != nil {
		return err
	}
	var err error
	if n.kpx, err = n.start("kube-proxy", nil, filepath.Join(n.c.nodeBin, "kube-proxy"), "--config", cfg); err != nil {
		return err
	}
	// /healthz answers before the first sync: wait for the kubernetes Service's rule instead.
	if err := proc.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		out, err := n.Exec(ctx, "nft", "list", "table", "ip", "kube-proxy")
		return (err == nil && strings.Contains(out, APIServiceIP)) || n.kpx.Exited()
	}); err != nil || n.kpx.Exited() {
		return fmt.Errorf("%s: kube-proxy did not program the kubernetes Service (%v); its log %s ends:\n%s", n.Name, err, n.kpx.Log, n.kpx.Tail(10))
	}
	return nil
}
