package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cniconfig "github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

// Node is one simulated Kubernetes node: a network namespace with its own OVS.
type Node struct {
	Name   string // Kubernetes node name, also the suffix of the namespace
	NS     string // network namespace
	IP     string // underlay (InternalIP) address on br-phy
	Index  int
	Dir    string // run directory: OVS db, sockets, logs, CNI config
	ulPort string // the underlay bridge's side of the node's eth0 veth

	agent *Process
	ovs   *testbed.OVS
	fwd   *forwarder
}

// Socket is the node's OVSDB unix socket.
func (n *Node) Socket() string { return filepath.Join(n.Dir, "db.sock") }

// VswitchdCtl is ovs-vswitchd's unixctl socket, for ovs-appctl -t.
func (n *Node) VswitchdCtl() string { return n.ovs.Ctl() }

// CNIConfDir is where the node's agent writes its conflist.
func (n *Node) CNIConfDir() string { return filepath.Join(n.Dir, "net.d") }

// CNIBinDir is the node's CNI plugin directory, as /opt/cni/bin on a real node: the
// ovsmesh plugin, host-local and portmap built for this run, under the names the agent
// installs them by (symlinks).
func (n *Node) CNIBinDir() string { return filepath.Join(n.Dir, "cni-bin") }

// IPAMDataDir is host-local's store for this node.
func (n *Node) IPAMDataDir() string { return filepath.Join(n.Dir, "ipam") }

// Vsctl runs ovs-vsctl against the node's database.
func (n *Node) Vsctl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ovs-vsctl", append([]string{"--db=unix:" + n.Socket(), "--timeout=20"}, args...)...)
}

// Appctl runs ovs-appctl against the node's ovs-vswitchd.
func (n *Node) Appctl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ovs-appctl", append([]string{"-t", n.VswitchdCtl()}, args...)...)
}

// Exec runs a command inside the node's namespace.
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	return inNS(ctx, n.NS, args...)
}

// addNode creates the namespace, the underlay link, OVS and br-phy, and the Node object.
func (c *Cluster) addNode(ctx context.Context, idx int) (*Node, error) {
	n := &Node{
		Name:   fmt.Sprintf("node%d", idx),
		NS:     fmt.Sprintf("%s-n%d", c.Prefix, idx),
		IP:     fmt.Sprintf("172.30.0.%d", idx),
		Index:  idx,
		Dir:    filepath.Join(c.Dir, fmt.Sprintf("n%d", idx)),
		ulPort: fmt.Sprintf("%s-u%d", c.Prefix, idx),
	}
	for _, d := range []string{n.Dir, n.CNIConfDir(), n.IPAMDataDir(), n.CNIBinDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for name, target := range map[string]string{"ovsmesh": filepath.Join(c.Bin, "ovsmesh"),
		cniconfig.HostLocalType: filepath.Join(c.Bin, "host-local"), cniconfig.PortmapType: filepath.Join(c.Bin, "portmap")} {
		if err := os.Symlink(target, filepath.Join(n.CNIBinDir(), name)); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.namespaces = append(c.namespaces, n.NS)
	c.mu.Unlock()
	if err := addNS(ctx, n.NS); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "link", "add", n.ulPort, "netns", c.underlayNS, "type", "veth", "peer", "name", "eth0", "netns", n.NS},
		{"ip", "-n", c.underlayNS, "link", "set", n.ulPort, "master", "ulbr", "up"},
		{"ip", "-n", n.NS, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	offloadsOff(ctx, n.NS, "eth0")
	offloadsOff(ctx, c.underlayNS, n.ulPort)
	if err := n.startOVS(ctx); err != nil {
		return nil, err
	}
	if err := n.ovs.UnderlayBridge(ctx, fmt.Sprintf("02:00:00:00:00:%02x", idx), n.IP+"/24", n.Exec); err != nil {
		return nil, fmt.Errorf("%s: %w", n.Name, err)
	}
	// The local API forwarder: agents reach https://127.0.0.1:<port> inside their namespace,
	// the same URL the admin kubeconfig uses outside.
	fwd, err := startForwarder(n.NS, c.apiHostPort, c.apiHostPort)
	if err != nil {
		return nil, fmt.Errorf("%s: API forwarder: %w", n.Name, err)
	}
	n.fwd = fwd

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{"kubernetes.io/hostname": n.Name}}}
	if err := c.Client.Create(ctx, node); err != nil {
		return nil, err
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "Harness", LastHeartbeatTime: metav1.Now()}}
	if err := c.Client.Status().Update(ctx, node); err != nil {
		return nil, err
	}
	return n, nil
}

// startOVS creates the node's database and starts ovsdb-server and ovs-vswitchd inside the
// node namespace (children of the harness, which owns their lifetime).
func (n *Node) startOVS(ctx context.Context) error {
	var err error
	n.ovs, err = testbed.StartOVS(ctx, testbed.OVSConfig{Dir: n.Dir, Prefix: []string{"ip", "netns", "exec", n.NS},
		DBInside: true, SystemID: n.Name})
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	return n.StartVswitchd(ctx)
}

// StartVswitchd starts ovs-vswitchd and waits until it answers.
func (n *Node) StartVswitchd(ctx context.Context) error { return n.ovs.StartVswitchd(ctx) }

// StopVswitchd kills ovs-vswitchd the way a crash or an upgrade would.
func (n *Node) StopVswitchd() { n.ovs.KillVswitchd() }

// teardown stops the node's processes. The namespace itself is removed by the cluster.
func (n *Node) teardown(ctx context.Context) {
	n.StopAgent()
	n.fwd.Close()
	// exit --cleanup removes the datapath's taps and ports with the daemon.
	n.ovs.Stop()
}
