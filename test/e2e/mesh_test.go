package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/harness"
	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// TestMeshLifecycle walks one 3-node cluster through the life of a real deployment: a GRE
// mesh under STP, MTU and egress, restarts of the agent and of ovs-vswitchd under traffic, a
// live switch to VXLAN, a node joining and leaving, and uninstall. The steps share the
// cluster (starting one costs ~20 s) and stop at the first failure.
func TestMeshLifecycle(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	apply(t, c, networkCluster("GRE", "STP"))
	pods := availableThenPing(t, c, 2)

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"GRE mesh: every pod pair pings", func(t *testing.T) {
			for _, n := range c.Nodes {
				ports, err := n.TunnelPorts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(ports) != len(c.Nodes)-1 {
					t.Errorf("%s has %d tunnel ports, want %d: %v", n.Name, len(ports), len(c.Nodes)-1, ports)
				}
				for p, typ := range ports {
					if typ != "gre" {
						t.Errorf("%s: port %s is %s, want gre", n.Name, p, typ)
					}
				}
			}
			pingAll(t, pods, 60*time.Second)
		}},
		{"CNI 1.1.0: STATUS says ready on every node; GC removes only what is not a valid attachment", func(t *testing.T) {
			for _, n := range c.Nodes {
				v, err := c.CNIStatus(ctx, n)
				if v != "1.1.0" || err != nil {
					t.Errorf("%s: conflist cniVersion %q, STATUS %v; want 1.1.0, ready", n.Name, v, err)
				}
			}
			n := c.Nodes[0]
			victim, err := c.AddPod(ctx, n, "gc-victim")
			if err != nil {
				t.Fatal(err)
			}
			defer c.DelPod(ctx, victim) // DEL after GC: idempotent
			if got, err := victim.Ping(ctx, pods[len(pods)-1].IP, 1, "-W", "2"); err != nil || got != 1 {
				t.Fatalf("the new pod does not ping before GC: %d (%v)", got, err)
			}
			stored := filepath.Join(n.IPAMDataDir(), "ovsmesh", victim.IP)
			if _, err := os.Stat(stored); err != nil {
				t.Fatalf("host-local holds no reservation for %s: %v", victim.IP, err)
			}
			if err := c.CNIGC(ctx, n, pods); err != nil {
				t.Fatalf("GC on %s: %v", n.Name, err)
			}
			if got, _ := victim.Ping(ctx, pods[len(pods)-1].IP, 1, "-W", "1"); got != 0 {
				t.Error("a pod GC left out still has its network")
			}
			if _, err := os.Stat(stored); !os.IsNotExist(err) {
				t.Errorf("the reservation of %s survived GC (%v)", victim.IP, err)
			}
			pingAll(t, pods, 30*time.Second)
		}},
		{"STP: one tunnel port blocked, no broadcast storm", func(t *testing.T) {
			checkLoopFree(t, c, pods, "STP")
		}},
		{"MTU auto: full-size DF ping and iperf3 TCP", func(t *testing.T) {
			checkMTU(t, c, pods[0], pods[len(pods)-1], 1500-42)
		}},
		{"egress masquerade: outside host sees the node address", func(t *testing.T) {
			out, err := c.AddOutsideHost(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*harness.Pod{pods[0], pods[len(pods)-1]} {
				src, err := out.SourceSeenFrom(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if src != p.Node.IP {
					t.Errorf("outside host saw %s from pod %s (%s), want its node's address %s", src, p.Name, p.IP, p.Node.IP)
				}
			}
			// Without masquerade the router beyond the underlay has no way back to the pod:
			// the same connection must fail, which shows the check above depends on the rule.
			if _, err := c.Kubectl(ctx, "patch", "networkcluster", "default", "--type=merge", "-p", `{"spec":{"masquerade":false}}`); err != nil {
				t.Fatal(err)
			}
			waitAvailable(t, c, time.Minute)
			if src, err := out.SourceSeenFrom(ctx, pods[0]); err == nil {
				t.Errorf("with masquerade off the outside host still answered (saw %s)", src)
			}
			if _, err := c.Kubectl(ctx, "patch", "networkcluster", "default", "--type=merge", "-p", `{"spec":{"masquerade":true}}`); err != nil {
				t.Fatal(err)
			}
			waitAvailable(t, c, time.Minute)
			eventually(t, 20*time.Second, "egress after masquerade is back", func() error {
				_, err := out.SourceSeenFrom(ctx, pods[0])
				return err
			})
		}},
		{"agent restart during continuous ping: 0 packets lost", func(t *testing.T) {
			from, to := pods[0], pods[len(pods)-1]
			ping, err := from.Start("ping", "ping", "-i", "0.05", "-c", "160", "-W", "1", to.IP)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(1 * time.Second)
			for _, n := range []*harness.Node{from.Node, to.Node} {
				n.StopAgent()
				if err := c.StartAgent(n); err != nil {
					t.Fatal(err)
				}
			}
			out, err := ping.Output(30 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "160 packets transmitted, 160 received, 0% packet loss") {
				t.Fatalf("packets lost across agent restarts:\n%s", proc.LastLines(out, 3))
			}
			waitAvailable(t, c, time.Minute)
		}},
		{"ovs-vswitchd restart: connectivity recovers", func(t *testing.T) {
			from, to := pods[0], pods[len(pods)-1]
			n := from.Node
			t0 := time.Now()
			n.StopVswitchd()
			if err := n.StartVswitchd(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, 90*time.Second, "ping after ovs-vswitchd restart", func() error {
				if got, _ := from.Ping(ctx, to.IP, 1); got != 1 {
					return fmt.Errorf("no reply")
				}
				return nil
			})
			t.Logf("connectivity recovered %.1f s after ovs-vswitchd was killed (STP forward delay 4 s: listening+learning = 8 s)", time.Since(t0).Seconds())
			pingAll(t, pods, 60*time.Second)
		}},
		{"live GRE→VXLAN switch: bridges kept, pods still reach each other", func(t *testing.T) {
			before := map[string]string{}
			for _, n := range c.Nodes {
				before[n.Name] = n.BridgeUUID(ctx, "obr0")
			}
			if _, err := c.Kubectl(ctx, "patch", "networkcluster", "default", "--type=merge", "-p", `{"spec":{"tunnel":{"type":"VXLAN"}}}`); err != nil {
				t.Fatal(err)
			}
			waitAvailable(t, c, 2*time.Minute)
			for _, n := range c.Nodes {
				ports, err := n.TunnelPorts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for p, typ := range ports {
					if typ != "vxlan" {
						t.Errorf("%s: port %s is still %s after the switch", n.Name, p, typ)
					}
				}
				if len(ports) != len(c.Nodes)-1 {
					t.Errorf("%s has %d tunnel ports, want %d", n.Name, len(ports), len(c.Nodes)-1)
				}
				if after := n.BridgeUUID(ctx, "obr0"); after != before[n.Name] || after == "" {
					t.Errorf("%s: obr0 was recreated (uuid %s → %s)", n.Name, before[n.Name], after)
				}
			}
			pingAll(t, pods, 60*time.Second)
			// The pods attached under GRE keep their MTU (1458) until they are recreated;
			// VXLAN needs 8 bytes more. TCP between them must still work: the gateway
			// (kbr0, now at the VXLAN MTU) answers oversized DF packets with "fragmentation
			// needed", and the pods' path MTU follows.
			checkTCP(t, pods[0], pods[len(pods)-1])
		}},
		{"a fourth node joins: the mesh extends and pods reach it", func(t *testing.T) {
			n4, err := c.AddNode(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			waitAvailable(t, c, 2*time.Minute)
			for _, n := range c.Nodes {
				eventually(t, 30*time.Second, n.Name+" tunnels", func() error {
					ports, err := n.TunnelPorts(ctx)
					if err != nil || len(ports) != 3 {
						return fmt.Errorf("%d tunnel ports (%v), want 3", len(ports), err)
					}
					return nil
				})
			}
			p4, err := c.AddPod(ctx, n4, n4.Name+"a")
			if err != nil {
				t.Fatal(err)
			}
			pods = append(pods, p4)
			pingAll(t, pods, 60*time.Second)
		}},
		{"a node is deleted: its tunnels go everywhere, its subnet is released", func(t *testing.T) {
			n4 := c.Nodes[len(c.Nodes)-1]
			var ns v1alpha1.NodeSubnet
			if err := c.Client.Get(ctx, client.ObjectKey{Name: n4.Name}, &ns); err != nil {
				t.Fatal(err)
			}
			freed := ns.Spec.CIDR
			var kept []*harness.Pod
			for _, p := range pods {
				if p.Node != n4 {
					kept = append(kept, p)
				}
			}
			pods = kept
			if err := c.RemoveNode(ctx, n4); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "NodeSubnet of the deleted node removed", func() error {
				err := c.Client.Get(ctx, client.ObjectKey{Name: n4.Name}, &ns)
				if apierrors.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("still there (err=%v)", err)
			})
			for _, n := range c.Nodes {
				eventually(t, 30*time.Second, n.Name+" drops the tunnel to "+n4.Name, func() error {
					ports, err := n.TunnelPorts(ctx)
					if err != nil || len(ports) != 2 {
						return fmt.Errorf("%d tunnel ports (%v), want 2", len(ports), err)
					}
					return nil
				})
			}
			waitAvailable(t, c, time.Minute)
			// The released subnet is handed to the next node that joins.
			n5, err := c.AddNode(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "subnet for the new node", func() error {
				var s v1alpha1.NodeSubnet
				if err := c.Client.Get(ctx, client.ObjectKey{Name: n5.Name}, &s); err != nil {
					return err
				}
				if s.Spec.CIDR != freed {
					return fmt.Errorf("new node got %s, want the released %s", s.Spec.CIDR, freed)
				}
				return nil
			})
			waitAvailable(t, c, 2*time.Minute)
			pingAll(t, pods, 60*time.Second)
		}},
		{"uninstall: nothing is left on any node", func(t *testing.T) {
			if _, err := c.Kubectl(ctx, "delete", "networkcluster", "default", "--timeout=3m"); err != nil {
				t.Fatal(err)
			}
			for _, n := range c.Nodes {
				checkNodeClean(t, n)
			}
			var list v1alpha1.NodeSubnetList
			if err := c.Client.List(ctx, &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 0 {
				t.Errorf("%d NodeSubnets left after uninstall", len(list.Items))
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			t.Fatalf("step %q failed; later steps depend on it", s.name)
		}
	}
}

// TestVXLANMeshWithRSTP starts a cluster directly on VXLAN with RSTP: every pair pings, one
// tunnel port is discarding, and there is no broadcast storm.
func TestVXLANMeshWithRSTP(t *testing.T) {
	c := startCluster(t, 3)
	apply(t, c, networkCluster("VXLAN", "RSTP"))
	pods := availableThenPing(t, c, 2)
	checkLoopFree(t, c, pods, "RSTP")
	checkMTU(t, c, pods[0], pods[len(pods)-1], 1500-50)
}

// checkLoopFree asserts that spanning tree blocks exactly the redundant tunnel ports of the
// full mesh, (n-1)(n-2)/2 of them, and that a burst of broadcasts does not turn into a storm
// on the underlay.
func checkLoopFree(t *testing.T, c *harness.Cluster, pods []*harness.Pod, protocol string) {
	t.Helper()
	n := len(c.Nodes)
	want := (n - 1) * (n - 2) / 2
	var blocked int
	var states map[string]map[string]string
	eventually(t, 60*time.Second, protocol+" converged", func() error {
		blocked, states = blockedPorts(t, c, protocol)
		if !settled(states) || blocked != want {
			return fmt.Errorf("%d blocked tunnel ports, want %d: %v", blocked, want, states)
		}
		return nil
	})
	t.Logf("%s: %d blocked tunnel port(s): %v", protocol, blocked, states)
	checkNoStorm(t, c, pods)
}

// checkNoStorm sends ARP for an address nobody has: broadcasts flood the whole mesh. With a
// loop and nothing breaking it they would circulate forever (thousands of packets per
// second); the underlay must see a few hundred packets at most.
func checkNoStorm(t *testing.T, c *harness.Cluster, pods []*harness.Pod) {
	t.Helper()
	ctx := context.Background()
	before, err := c.UnderlayPackets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = pods[0].Exec(ctx, "ping", "-c", "5", "-i", "0.2", "-W", "1", otherSubnetHost(pods[len(pods)-1].IP))
	time.Sleep(3 * time.Second)
	after, err := c.UnderlayPackets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("underlay packets in ~4 s with 5 ARP broadcasts: %d", after-before)
	if after-before > 500 {
		t.Fatalf("broadcast storm: %d underlay packets in ~4 s", after-before)
	}
}

// otherSubnetHost returns an unused address in the subnet of ip (x.y.z.250).
func otherSubnetHost(ip string) string {
	i := strings.LastIndex(ip, ".")
	return ip[:i] + ".250"
}

// checkMTU asserts the auto MTU and that a full-size packet with DF set, and TCP, pass.
func checkMTU(t *testing.T, c *harness.Cluster, from, to *harness.Pod, want int) {
	t.Helper()
	ctx := context.Background()
	var ns v1alpha1.NodeSubnet
	if err := c.Client.Get(ctx, client.ObjectKey{Name: from.Node.Name}, &ns); err != nil {
		t.Fatal(err)
	}
	if int(ns.Status.MTU) != want {
		t.Errorf("NodeSubnet %s reports MTU %d, want %d", ns.Name, ns.Status.MTU, want)
	}
	out, err := from.Exec(ctx, "cat", "/sys/class/net/eth0/mtu")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(strings.TrimSpace(out)); got != want {
		t.Errorf("pod eth0 MTU %d, want %d", got, want)
	}
	size := strconv.Itoa(want - 28) // IP + ICMP headers
	got, err := from.Ping(ctx, to.IP, 3, "-M", "do", "-s", size)
	if err != nil || got != 3 {
		t.Fatalf("full-size (%s bytes payload) DF ping %s → %s: %d/3 (%v)", size, from.Name, to.Name, got, err)
	}
	checkTCP(t, from, to)
}

// checkTCP asserts that a 3 s iperf3 TCP run from → to moves real data: at least minTCPBytes.
// A path that blackholes full-size segments still "completes" a run, with a few KB.
func checkTCP(t *testing.T, from, to *harness.Pod) {
	t.Helper()
	ctx := context.Background()
	srv, err := to.Start("iperf3-server", "iperf3", "-s", "-1", "-B", to.IP)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	got, res, err := harness.Iperf3(ctx, from.NS, to.IP, 3, 10*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	t.Logf("iperf3 %s → %s: %.1f MB received, %.0f Mbit/s", from.Name, to.Name, float64(got.BytesReceived)/1e6, got.BitsPerSecond/1e6)
	if got.BytesReceived < minTCPBytes {
		t.Fatalf("iperf3 %s → %s received %d bytes in 3 s (%d retransmits), want at least %d: full-size segments are being dropped\n%s",
			from.Name, to.Name, got.BytesReceived, got.Retransmits, minTCPBytes, res)
	}
}

// minTCPBytes is 10 MB in 3 s (27 Mbit/s): a healthy overlay here moves 100-200 MB, a
// blackholing one ~80 KB.
const minTCPBytes = 10_000_000

// checkNodeClean asserts that nothing ovsmesh created is left on the node.
func checkNodeClean(t *testing.T, n *harness.Node) {
	t.Helper()
	ctx := context.Background()
	if out, _ := n.Vsctl(ctx, "list-br"); strings.Contains(out, "obr0") {
		t.Errorf("%s: obr0 still exists", n.Name)
	}
	if _, err := n.Exec(ctx, "ip", "link", "show", "kbr0"); err == nil {
		t.Errorf("%s: kbr0 still exists", n.Name)
	}
	if out, _ := n.Exec(ctx, "ip", "route", "show", "10.244.0.0/16"); strings.TrimSpace(out) != "" {
		t.Errorf("%s: cluster route still there: %s", n.Name, out)
	}
	if _, err := n.Exec(ctx, "nft", "list", "table", "ip", "ovsmesh"); err == nil {
		t.Errorf("%s: masquerade table still there", n.Name)
	}
	if _, err := os.Stat(filepath.Join(n.CNIConfDir(), "10-ovsmesh.conflist")); err == nil {
		t.Errorf("%s: CNI config still there", n.Name)
	}
	if out, _ := n.Exec(ctx, "ip", "-br", "link"); strings.Contains(out, "vobr0") || strings.Contains(out, "vkbr0") {
		t.Errorf("%s: bridge veth still there:\n%s", n.Name, out)
	}
}
