package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/harness"
	"github.com/ovsmesh/ovsmesh/internal/proc"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

// DatapathOptions sizes the data-path benchmark.
type DatapathOptions struct {
	Duration time.Duration // of each iperf3 run (10 s in the report)
	// Knobs also measures with OVS userspace TSO enabled and then with a 9000-byte underlay
	// MTU (cumulative), after the baseline.
	Knobs bool
}

// DatapathRun is one configuration's throughputs in bits/s.
type DatapathRun struct {
	Config   string
	GRE      float64 // pod→pod across a GRE tunnel
	VXLAN    float64 // pod→pod across a VXLAN tunnel
	NodeNode float64 // node→node, br-phy to br-phy through the same OVS
	Underlay float64 // two namespaces straight on the underlay bridge
	// Pod MTUs (auto: underlay MTU minus the tunnel overhead).
	GREMTU, VXLANMTU int
}

// DatapathResult holds every configuration measured.
type DatapathResult struct {
	Runs []DatapathRun
}

func gbps(b float64) string { return fmt.Sprintf("%.2f Gbit/s", b/1e9) }

// Figures: for every configuration, GRE and VXLAN pod→pod over node→node through OVS
// (target ≥ 0.8×), and node→node over the raw underlay (for information).
func (r DatapathResult) Figures() []Figure {
	var out []Figure
	for _, run := range r.Runs {
		for _, t := range []struct {
			name string
			bps  float64
			mtu  int
		}{{"GRE", run.GRE, run.GREMTU}, {"VXLAN", run.VXLAN, run.VXLANMTU}} {
			f := AtLeast(fmt.Sprintf("data path (%s): iperf3 pod→pod over %s vs node→node through OVS", run.Config, t.name),
				gbps(t.bps), gbps(run.NodeNode), Ratio(t.bps, run.NodeNode), 0.8)
			f.Note = fmt.Sprintf("pod MTU %d; raw underlay %s (pod→pod/underlay %.2f×)", t.mtu, gbps(run.Underlay), Ratio(t.bps, run.Underlay))
			out = append(out, f)
		}
		out = append(out, Figure{Name: fmt.Sprintf("data path (%s): node→node through OVS vs raw underlay", run.Config),
			Ours: gbps(run.NodeNode), Ref: gbps(run.Underlay), Ratio: Ratio(run.NodeNode, run.Underlay), Target: "(information)", Met: true})
	}
	return out
}

// endpoint is an iperf3 server: a namespace and the address it serves on.
type endpoint struct{ ns, ip, ulPort string }

// Datapath measures iperf3 TCP throughput in cluster c (two nodes at least, tunnel GRE to
// start with): pod→pod between pods on the first two nodes across GRE and across VXLAN (the
// NetworkCluster is switched live between them), node→node between the same nodes' br-phy
// addresses (through the same ovs-vswitchd, without a tunnel), and between two namespaces
// plugged straight into the underlay bridge (with offloads off, like every underlay port of
// the harness). With opts.Knobs, the same again with other_config:userspace-tso-enable=true
// (ovs-vswitchd restarted to take it), then also with a 9000-byte underlay MTU (pod MTU
// follows automatically: agents restarted to re-read it; new pods).
func Datapath(ctx context.Context, e *Env, c *harness.Cluster, o DatapathOptions) (DatapathResult, error) {
	var r DatapathResult
	if err := RequireTools("iperf3"); err != nil {
		return r, err
	}
	n1, n2 := c.Nodes[0], c.Nodes[1]
	under, err := underlayPair(ctx, e, c)
	if err != nil {
		return r, err
	}
	tunnel := "GRE"
	configs := []string{"baseline"}
	if o.Knobs {
		configs = append(configs, "+ userspace TSO", "+ userspace TSO + underlay MTU 9000")
	}
	for ci, cfg := range configs {
		switch ci {
		case 1:
			if err := enableTSO(ctx, c); err != nil {
				return r, err
			}
		case 2:
			if err := jumboUnderlay(ctx, c, under, 9000); err != nil {
				return r, err
			}
		}
		run := DatapathRun{Config: cfg}
		first, mtu1, err := podToPod(ctx, e, c, fmt.Sprintf("%d%s", ci, tunnel), o.Duration)
		if err != nil {
			return r, fmt.Errorf("%s pod→pod over %s: %w", cfg, tunnel, err)
		}
		if run.NodeNode, err = iperf(ctx, e, n1.NS, endpoint{ns: n2.NS, ip: n2.IP}, o.Duration); err != nil {
			return r, fmt.Errorf("%s node→node: %w", cfg, err)
		}
		if run.Underlay, err = iperf(ctx, e, under[0].ns, under[1], o.Duration); err != nil {
			return r, fmt.Errorf("%s underlay: %w", cfg, err)
		}
		other := map[string]string{"GRE": "VXLAN", "VXLAN": "GRE"}[tunnel]
		if err := switchTunnel(ctx, c, other); err != nil {
			return r, err
		}
		second, mtu2, err := podToPod(ctx, e, c, fmt.Sprintf("%d%s", ci, other), o.Duration)
		if err != nil {
			return r, fmt.Errorf("%s pod→pod over %s: %w", cfg, other, err)
		}
		if tunnel == "GRE" {
			run.GRE, run.VXLAN, run.GREMTU, run.VXLANMTU = first, second, mtu1, mtu2
		} else {
			run.GRE, run.VXLAN, run.GREMTU, run.VXLANMTU = second, first, mtu2, mtu1
		}
		tunnel = other
		e.Logf("data path (%s): GRE %s (pod MTU %d), VXLAN %s (pod MTU %d), node→node %s, underlay %s", cfg,
			gbps(run.GRE), run.GREMTU, gbps(run.VXLAN), run.VXLANMTU, gbps(run.NodeNode), gbps(run.Underlay))
		r.Runs = append(r.Runs, run)
	}
	return r, nil
}

// podToPod attaches a fresh pod on each of the first two nodes (fresh, so that the pod MTU is
// the one of the current tunnel type: pods attached before a live switch keep theirs) and
// runs iperf3 from the first to the second. It returns bits/s and the pod MTU.
func podToPod(ctx context.Context, e *Env, c *harness.Cluster, tag string, d time.Duration) (float64, int, error) {
	a, err := c.AddPod(ctx, c.Nodes[0], "dpa"+tag)
	if err != nil {
		return 0, 0, err
	}
	b, err := c.AddPod(ctx, c.Nodes[1], "dpb"+tag)
	if err != nil {
		return 0, 0, err
	}
	out, err := a.Exec(ctx, "cat", "/sys/class/net/eth0/mtu")
	if err != nil {
		return 0, 0, err
	}
	mtu, _ := strconv.Atoi(trimNL(out))
	if err := waitPing(ctx, a.NS, b.IP); err != nil {
		return 0, 0, fmt.Errorf("%w\n%s", err, diagnose(ctx, c, a, b))
	}
	bps, err := iperf(ctx, e, a.NS, endpoint{ns: b.NS, ip: b.IP}, d)
	return bps, mtu, err
}

// diagnose collects what explains a pod pair that does not ping: spanning tree, MAC tables,
// tunnel ports, the pods' neighbour tables.
func diagnose(ctx context.Context, c *harness.Cluster, pods ...*harness.Pod) string {
	var b strings.Builder
	for _, n := range c.Nodes {
		for _, args := range [][]string{{"rstp/show", "obr0"}, {"stp/show", "obr0"}, {"fdb/show", "obr0"}} {
			out, err := n.Appctl(ctx, args...)
			fmt.Fprintf(&b, "--- %s ovs-appctl %s (%v)\n%s\n", n.Name, strings.Join(args, " "), err, out)
		}
		out, err := n.Vsctl(ctx, "show")
		fmt.Fprintf(&b, "--- %s ovs-vsctl show (%v)\n%s\n", n.Name, err, out)
	}
	for _, p := range pods {
		out, err := p.Exec(ctx, "ip", "neigh")
		fmt.Fprintf(&b, "--- pod %s (%s on %s) ip neigh (%v)\n%s\n", p.Name, p.IP, p.Node.Name, err, out)
	}
	return b.String()
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// iperf runs an iperf3 server in to.ns for one test and a client in from, returning the
// received bits/s. A failed or empty run is retried, at most three times in all; every retry
// is logged. (A client that comes before the server listens is retried inside harness.Iperf3
// and is not one of them.)
func iperf(ctx context.Context, e *Env, from string, to endpoint, d time.Duration) (float64, error) {
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		bps, err := iperfOnce(ctx, e, from, to, d)
		if err == nil {
			return bps, nil
		}
		last = err
		e.Logf("iperf3 %s → %s attempt %d: %v", from, to.ip, attempt, err)
		time.Sleep(time.Second)
	}
	return 0, last
}

func iperfOnce(ctx context.Context, e *Env, from string, to endpoint, d time.Duration) (float64, error) {
	srv, err := e.Start(fmt.Sprintf("iperf3-%s-%d", to.ns, time.Now().UnixNano()), to.ns, nil, "iperf3", "-s", "-1", "-B", to.ip)
	if err != nil {
		return 0, err
	}
	defer srv.Stop(time.Second)
	res, out, err := harness.Iperf3(ctx, from, to.ip, max(1, int(d.Seconds())), 10*time.Second)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, proc.LastLines(out, 5))
	}
	if res.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("iperf3 to %s received nothing (%d retransmits)", to.ip, res.Retransmits)
	}
	return res.BitsPerSecond, nil
}

// waitPing waits until ns reaches ip (spanning tree may still be settling).
func waitPing(ctx context.Context, ns, ip string) error {
	err := waitFor(ctx, 2*time.Minute, 200*time.Millisecond, func() bool {
		_, err := inNS(ctx, ns, "ping", "-c", "1", "-W", "1", ip)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("%s cannot ping %s: %w", ns, ip, err)
	}
	return nil
}

// underlayPair plugs two namespaces into the underlay bridge (172.30.0.241 and .242).
func underlayPair(ctx context.Context, e *Env, c *harness.Cluster) ([]endpoint, error) {
	ul := c.Prefix + "-ul"
	var out []endpoint
	for i := 1; i <= 2; i++ {
		ns := fmt.Sprintf("%s-raw%d", e.Prefix, i)
		ip := fmt.Sprintf("172.30.0.%d", 240+i)
		port := fmt.Sprintf("%s-r%d", e.Prefix, i)
		if err := e.AddNetns(ctx, ns); err != nil {
			return nil, err
		}
		for _, s := range [][]string{
			{"ip", "link", "add", port, "netns", ul, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"ip", "-n", ul, "link", "set", port, "master", "ulbr", "up"},
			{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
			{"ip", "-n", ns, "link", "set", "eth0", "up"},
		} {
			if _, err := run(ctx, s[0], s[1:]...); err != nil {
				return nil, err
			}
		}
		offloadsOff(ctx, ns, "eth0")
		offloadsOff(ctx, ul, port)
		out = append(out, endpoint{ns: ns, ip: ip, ulPort: port})
	}
	return out, nil
}

func offloadsOff(ctx context.Context, ns, dev string) { testbed.OffloadsOff(ctx, ns, dev) }

// switchTunnel changes the NetworkCluster's tunnel type live and waits for Available.
func switchTunnel(ctx context.Context, c *harness.Cluster, typ string) error {
	var nc v1alpha1.NetworkCluster
	if err := c.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.NetworkClusterName}, &nc); err != nil {
		return err
	}
	patch := client.MergeFrom(nc.DeepCopy())
	nc.Spec.Tunnel.Type = v1alpha1.TunnelType(typ)
	if err := c.Client.Patch(ctx, &nc, patch); err != nil {
		return err
	}
	return WaitAvailable(ctx, c, 2*time.Minute)
}

// enableTSO sets other_config:userspace-tso-enable=true on every node and restarts
// ovs-vswitchd (the option is read at start-up).
func enableTSO(ctx context.Context, c *harness.Cluster) error {
	for _, n := range c.Nodes {
		if _, err := n.Vsctl(ctx, "set", "Open_vSwitch", ".", "other_config:userspace-tso-enable=true"); err != nil {
			return err
		}
		n.StopVswitchd()
		if err := n.StartVswitchd(ctx); err != nil {
			return err
		}
	}
	return WaitAvailable(ctx, c, 2*time.Minute)
}

// jumboUnderlay raises the underlay MTU everywhere (underlay ports, node eth0 and br-phy, the
// raw namespaces) and restarts the agents, which size kbr0 and the pod MTU from it.
func jumboUnderlay(ctx context.Context, c *harness.Cluster, under []endpoint, mtu int) error {
	m := strconv.Itoa(mtu)
	ul := c.Prefix + "-ul"
	for _, n := range c.Nodes {
		for _, s := range [][]string{
			{"ip", "-n", ul, "link", "set", fmt.Sprintf("%s-u%d", c.Prefix, n.Index), "mtu", m},
			{"ip", "-n", n.NS, "link", "set", "eth0", "mtu", m},
		} {
			if _, err := run(ctx, s[0], s[1:]...); err != nil {
				return err
			}
		}
		if _, err := n.Vsctl(ctx, "set", "Interface", "br-phy", "mtu_request="+m); err != nil {
			return err
		}
	}
	for _, u := range under {
		for _, s := range [][]string{
			{"ip", "-n", ul, "link", "set", u.ulPort, "mtu", m},
			{"ip", "-n", u.ns, "link", "set", "eth0", "mtu", m},
		} {
			if _, err := run(ctx, s[0], s[1:]...); err != nil {
				return err
			}
		}
	}
	for _, n := range c.Nodes {
		if err := waitFor(ctx, 20*time.Second, 100*time.Millisecond, func() bool {
			out, err := n.Exec(ctx, "cat", "/sys/class/net/br-phy/mtu")
			return err == nil && trimNL(out) == m
		}); err != nil {
			return fmt.Errorf("%s: br-phy MTU did not become %s: %w", n.Name, m, err)
		}
		n.StopAgent()
		if err := c.StartAgent(n); err != nil {
			return err
		}
	}
	// The NetworkCluster stays Available throughout (its generation does not change), so
	// wait for what matters: every agent has rewritten its CNI config with the larger MTU.
	for _, n := range c.Nodes {
		if err := waitFor(ctx, 2*time.Minute, 200*time.Millisecond, func() bool { return confMTU(n) > 1500 }); err != nil {
			return fmt.Errorf("%s: the CNI config's MTU did not follow the 9000-byte underlay: %w", n.Name, err)
		}
	}
	return WaitAvailable(ctx, c, 2*time.Minute)
}

// confMTU reads the pod MTU from the conflist the node's agent wrote (0 if none).
func confMTU(n *harness.Node) int {
	m, _ := filepath.Glob(filepath.Join(n.CNIConfDir(), "*.conflist"))
	if len(m) == 0 {
		return 0
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		return 0
	}
	var l struct {
		Plugins []struct {
			MTU int `json:"mtu"`
		} `json:"plugins"`
	}
	if json.Unmarshal(b, &l) != nil || len(l.Plugins) == 0 {
		return 0
	}
	return l.Plugins[0].MTU
}
