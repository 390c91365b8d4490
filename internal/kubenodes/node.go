package kubenodes

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/proc"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

//go:embed nodeinit.sh
var nodeInit []byte

// cgroupControllers are the v1 hierarchies (and the hybrid unified one) a node's kubelet gets
// a cgroup root in. This machine runs cgroup v1 with no systemd as PID 1.
var cgroupControllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"}

// Node is one Kubernetes node: network, mount and UTS namespaces of its own, its own OVS,
// containerd, kubelet and kube-proxy.
type Node struct {
	Name  string
	Index int
	IP    string // InternalIP, on br-phy
	NS    string // network namespace
	Dir   string // run directory; the node's private dirs live below it
	c     *Cluster

	holder                   *proc.Process
	containerd, kubelet, kpx *proc.Process
	ovs                      *testbed.OVS
	cgroup                   string // cgroup root name in every hierarchy
}

// OVSDir is the host side of the node's /var/run/openvswitch (db.sock, the ovs-vswitchd ctl).
func (n *Node) OVSDir() string { return filepath.Join(n.Dir, "ovs") }

// Socket is the node's OVSDB socket, from the host.
func (n *Node) Socket() string { return filepath.Join(n.OVSDir(), "db.sock") }

// CNIConfDir and CNIBinDir are the host side of the node's /etc/cni/net.d and /opt/cni/bin.
func (n *Node) CNIConfDir() string { return filepath.Join(n.Dir, "cni-conf") }

// CNIBinDir is the host side of the node's /opt/cni/bin.
func (n *Node) CNIBinDir() string { return filepath.Join(n.Dir, "cni-bin") }

// IPAMDir is the host side of host-local's store for the ovsmesh network on this node.
func (n *Node) IPAMDir() string { return filepath.Join(n.Dir, "cni-state", "networks") }

// in is the prefix that runs a command inside the node's namespaces, as its daemons run.
func (n *Node) in() []string {
	return []string{"nsenter", "-t", strconv.Itoa(n.holder.Pid()), "-m", "-n", "-u", "--"}
}

// Exec runs a command inside the node (its network, mount and UTS namespaces).
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	argv := append(n.in(), args...)
	return run(ctx, argv[0], argv[1:]...)
}

// Vsctl runs ovs-vsctl against the node's database.
func (n *Node) Vsctl(ctx context.Context, args ...string) (string, error) {
	return n.ovs.Vsctl(ctx, args...)
}

// Appctl runs ovs-appctl against the node's ovs-vswitchd.
func (n *Node) Appctl(ctx context.Context, args ...string) (string, error) {
	return n.ovs.Appctl(ctx, args...)
}

func (n *Node) start(name string, env []string, argv ...string) (*proc.Process, error) {
	full := n.in()
	if len(env) > 0 {
		full = append(append(full, "env"), env...)
	}
	return proc.Start(n.Dir, name, "", nil, append(full, argv...)...)
}

// AddNode brings up one more node and waits until its kubelet registered the Node.
func (c *Cluster) AddNode(ctx context.Context) (*Node, error) {
	c.mu.Lock()
	c.nextNode++
	i := c.nextNode
	c.mu.Unlock()
	if i > maxNodes {
		return nil, fmt.Errorf("at most %d nodes", maxNodes)
	}
	n := &Node{Name: nodeName(i), Index: i, IP: fmt.Sprintf("%s.%d", c.underlay, 10+i),
		NS: fmt.Sprintf("%s-n%d", c.Prefix, i), Dir: filepath.Join(c.Dir, nodeName(i)), c: c, cgroup: fmt.Sprintf("%s-n%d", c.Prefix, i)}
	c.mu.Lock()
	c.Nodes = append(c.Nodes, n)
	c.mu.Unlock()
	err := c.Step(fmt.Sprintf("start %s (netns, mount ns, OVS, containerd + images, kubelet, kube-proxy)", n.Name), func() error {
		return n.up(ctx)
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Node) up(ctx context.Context) error {
	c := n.c
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	// Network: eth0 on the underlay bridge.
	host := fmt.Sprintf("%s-v%d", c.Prefix, n.Index)
	for _, s := range [][]string{
		{"netns", "add", n.NS},
		{"-n", n.NS, "link", "set", "lo", "up"},
		{"link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n.NS},
		{"link", "set", host, "master", c.bridge, "up"},
		{"-n", n.NS, "link", "set", "eth0", "up"},
	} {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	// The userspace datapath reads frames over AF_PACKET and mishandles partial checksums and
	// GSO frames: no offloads on either end of the underlay link.
	testbed.OffloadsOff(ctx, "", host)
	testbed.OffloadsOff(ctx, n.NS, "eth0")

	// A cgroup root per node in every hierarchy, for its kubelet (cgroupRoot).
	for _, ctl := range cgroupControllers {
		d := filepath.Join("/sys/fs/cgroup", ctl, n.cgroup)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("%s: cgroup %s: %w", n.Name, d, err)
		}
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join("/sys/fs/cgroup/cpuset", n.cgroup, f), b, 0o644); err != nil {
			return err
		}
	}

	// The mount and UTS namespaces, held by nodeinit.sh.
	script := filepath.Join(n.Dir, "nodeinit.sh")
	if err := os.WriteFile(script, nodeInit, 0o755); err != nil {
		return err
	}
	h, err := proc.Start(n.Dir, "holder", "", nil, "nsenter", "--net=/run/netns/"+n.NS,
		"unshare", "--mount", "--uts", "--propagation", "private", "--", "sh", script, n.Dir, n.Name)
	if err != nil {
		return err
	}
	n.holder = h
	if err := proc.WaitFor(ctx, 10*time.Second, 50*time.Millisecond, func() bool {
		_, err := os.Stat(filepath.Join(n.Dir, "ns-ready"))
		return err == nil || h.Exited()
	}); err != nil || h.Exited() {
		return fmt.Errorf("%s: mount namespace setup failed: %v\n%s", n.Name, err, h.Tail(10))
	}

	if err := n.startOVS(ctx); err != nil {
		return err
	}
	// Services: the first packet to a ClusterIP needs a route before kube-proxy's DNAT.
	if _, err := n.Exec(ctx, "ip", "route", "add", ServiceCIDR, "via", n.c.BridgeIP()); err != nil {
		return err
	}
	// The node's own CNI plugins, as a node image ships them: containerd needs loopback.
	if err := copyFile("/usr/lib/cni/loopback", filepath.Join(n.CNIBinDir(), "loopback")); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	if err := n.startKubelet(ctx); err != nil {
		return err
	}
	return n.startKubeProxy(ctx)
}

// startOVS starts the node's ovsdb-server and ovs-vswitchd inside its namespaces at the usual
// /var/run/openvswitch (ovs-vswitchd's control socket at OVS's default name, which the agent
// finds from the pidfile), and moves the node address onto br-phy (userspace tunnels need
// the underlay address on an OVS bridge: OVS native tunnelling).
func (n *Node) startOVS(ctx context.Context) error {
	var err error
	n.ovs, err = testbed.StartOVS(ctx, testbed.OVSConfig{Dir: n.OVSDir(), RunDir: "/run/openvswitch",
		Prefix: n.in(), DBInside: true, DefaultCtl: true, SystemID: n.Name})
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if err := n.ovs.StartVswitchd(ctx); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if err := n.ovs.UnderlayBridge(ctx, fmt.Sprintf("02:00:00:00:01:%02x", n.Index), n.IP+"/24", n.Exec); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// teardown stops everything of the node: the kubelet first (so it restarts nothing), then
// every process in the node's cgroups (the pods), its mount namespace (containerd, shims,
// OVS, kube-proxy, the holder) and its network namespace; then the cgroups and the namespace.
func (n *Node) teardown(ctx context.Context) {
	n.kubelet.Stop(10 * time.Second)
	n.kpx.Stop(5 * time.Second)
	killUntilGone(n.cgroupPids)
	n.containerd.Stop(5 * time.Second)
	n.ovs.Stop()
	if n.holder != nil {
		mnt, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.holder.Pid()))
		if mnt != "" {
			killUntilGone(func() []int { return pidsInNamespace("mnt", mnt) })
		}
		n.holder.Kill()
	}
	if out, err := run(ctx, "ip", "netns", "pids", n.NS); err == nil {
		for _, f := range strings.Fields(out) {
			if p, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
	n.removeCgroups()
	_, _ = run(ctx, "ip", "netns", "del", n.NS)
}

// killUntilGone SIGKILLs the processes list returns until it returns none (a pod's
// processes can fork while they are being killed), for at most 5 s.
func killUntilGone(list func() []int) {
	for round := 0; round < 50; round++ {
		pids := list()
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cgroupPids lists every process in the node's pids hierarchy subtree.
func (n *Node) cgroupPids() []int {
	var pids []int
	root := filepath.Join("/sys/fs/cgroup/pids", n.cgroup)
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeCgroups removes the node's cgroup subtrees, deepest first.
func (n *Node) removeCgroups() {
	for _, ctl := range cgroupControllers {
		root := filepath.Join("/sys/fs/cgroup", ctl, n.cgroup)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(dirs[i])
		}
	}
}

// pidsInNamespace lists the processes whose namespace of kind is ns (a readlink of
// /proc/PID/ns/KIND, e.g. "mnt:[4026532]").
func pidsInNamespace(kind, ns string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind)); err == nil && l == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}
