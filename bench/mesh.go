package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/harness"
	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// MeshOptions sizes the loop-prevention comparison.
type MeshOptions struct {
	Pings int           // pings between two nodes for the transit count (200 in the report)
	Iperf time.Duration // each iperf3 run (10 s in the report)
	// KillWindow is how long the remaining pair is pinged after a node dies (25 s).
	KillWindow time.Duration
	// SyntheticPeers, when > 0 (STP only), adds Node objects until the mesh needs that many
	// tunnels per node, beyond STP's limit, and measures the refusal.
	SyntheticPeers int
}

// MeshResult is one loop-prevention mode on a 4-node cluster (fast timers).
type MeshResult struct {
	Protocol string
	// Bystander is the node that should carry nothing while two others talk: the root under
	// STP/RSTP, any third node under SplitHorizon.
	Bystander string
	Pings     int
	// Transit is the number of underlay packets that reached the bystander during Pings
	// pings between the other two (requests and replies: 2 × Pings if everything crosses it),
	// less Idle, those that reach it in an idle window as long.
	Transit, Idle uint64
	// Direct is iperf3 between two nodes neither of which is the bystander; OneHop between a
	// node and the bystander (bits/s; the better of two runs each, alternated).
	Direct, OneHop float64
	// KillSent and KillLost: continuous ping between two nodes while the bystander is killed
	// (its ovs-vswitchd and agent, with no goodbye).
	KillSent, KillLost int
	// Synthetic: the STP refusal (nil when not measured).
	Synthetic *SyntheticResult
}

// SyntheticResult is the STP mesh grown beyond its port limit with Node objects whose
// addresses lead nowhere (198.18.0.0/15).
type SyntheticResult struct {
	Peers int
	// Refused: every real node reports Ready=False SpanningTreeLimit and the NetworkCluster
	// Degraded SpanningTreeLimit. WithinLimit: no node has more tunnels than STP covers
	// (the Nodes join one by one, so each agent builds up to the limit and stops there);
	// MaxTunnels is the most any node has.
	Refused, WithinLimit bool
	MaxTunnels           int
	// UnderlayRate is packets per second on the underlay over 5 s once refused.
	UnderlayRate float64
}

// Figures: packets through the bystander per ping packet (SplitHorizon: target ≤ 0.05, i.e.
// none but the odd ARP); iperf3 between two non-root nodes vs a node and the root
// (SplitHorizon ≥ 0.95×); loss while a node dies (SplitHorizon: 0); the STP refusal.
func (r MeshResult) Figures() []Figure {
	sh := r.Protocol == string(v1alpha1.ProtocolSplitHorizon)
	var figs []Figure
	ratio := float64(r.Transit) / float64(2*r.Pings)
	name := fmt.Sprintf("mesh (%s, 4 nodes): underlay packets reaching a third node (%s) during %d pings between two others, per ping packet", r.Protocol, r.Bystander, r.Pings)
	if sh {
		f := AtMost(name, fmt.Sprintf("%d packets", r.Transit), fmt.Sprintf("%d ping packets", 2*r.Pings), ratio, 0.05)
		f.Note = fmt.Sprintf("after subtracting the %d packets an idle window as long brings", r.Idle)
		figs = append(figs, f)
	} else {
		figs = append(figs, Reported(name, fmt.Sprintf("%d packets", r.Transit), fmt.Sprintf("%d ping packets", 2*r.Pings), ratio,
			fmt.Sprintf("the bystander is the root; %d packets in an idle window subtracted", r.Idle)))
	}
	name = fmt.Sprintf("mesh (%s, 4 nodes): iperf3 between two nodes other than %s vs between a node and %s", r.Protocol, r.Bystander, r.Bystander)
	if sh {
		figs = append(figs, AtLeast(name, gbps(r.Direct), gbps(r.OneHop), Ratio(r.Direct, r.OneHop), 0.95))
	} else {
		figs = append(figs, Reported(name, gbps(r.Direct), gbps(r.OneHop), Ratio(r.Direct, r.OneHop), "the pair's traffic crosses the root"))
	}
	name = fmt.Sprintf("mesh (%s, 4 nodes): packets lost between two nodes while %s is killed (ping every 20 ms)", r.Protocol, r.Bystander)
	lost := Ratio(float64(r.KillLost), float64(r.KillSent))
	if sh {
		f := AtMost(name, fmt.Sprintf("%d lost", r.KillLost), fmt.Sprintf("%d sent", r.KillSent), lost, 0)
		figs = append(figs, f)
	} else {
		figs = append(figs, Reported(name, fmt.Sprintf("%d lost", r.KillLost), fmt.Sprintf("%d sent", r.KillSent), lost,
			fmt.Sprintf("%.1f s of traffic lost", float64(r.KillLost)*0.02)))
	}
	if s := r.Synthetic; s != nil {
		verdict := fmt.Sprintf("refused (Ready=False SpanningTreeLimit on every node, NetworkCluster Degraded); the agents stopped at %d tunnels (limit %d)",
			s.MaxTunnels, v1alpha1.ProtocolSTP.MaxTunnels())
		if !s.Refused || !s.WithinLimit {
			verdict = fmt.Sprintf("NOT refused as it should be (refused %v, at most %d tunnels on a node)", s.Refused, s.MaxTunnels)
		}
		f := AtMost(fmt.Sprintf("mesh (STP): %d peers per node, beyond STP's 254: underlay packets a second once refused, vs a storm's 1,000", s.Peers),
			fmt.Sprintf("%.0f pkt/s", s.UnderlayRate), "1,000 pkt/s", s.UnderlayRate/1000, 1.0)
		f.Note = verdict
		f.Met = f.Met && s.Refused && s.WithinLimit
		figs = append(figs, f)
	}
	return figs
}

// Mesh measures one loop-prevention mode on a running 4-node cluster c (see StartCluster, fast
// timers): transit through a bystander, throughput with and without it, loss while it dies,
// and for STP with o.SyntheticPeers the refusal of a mesh beyond the port limit. The
// bystander is killed last, so c is spent afterwards.
func Mesh(ctx context.Context, e *Env, c *harness.Cluster, protocol string, o MeshOptions) (MeshResult, error) {
	r := MeshResult{Protocol: protocol, Pings: o.Pings}
	if len(c.Nodes) < 4 {
		return r, fmt.Errorf("mesh benchmark needs 4 nodes, have %d", len(c.Nodes))
	}
	by, err := bystander(ctx, c, protocol)
	if err != nil {
		return r, err
	}
	r.Bystander = by.Name
	var others []*harness.Node
	for _, n := range c.Nodes {
		if n != by {
			others = append(others, n)
		}
	}
	pods := map[*harness.Node]*harness.Pod{}
	for _, n := range c.Nodes {
		p, err := c.AddPod(ctx, n, n.Name+"m")
		if err != nil {
			return r, err
		}
		pods[n] = p
	}
	a, b := pods[others[0]], pods[others[1]]
	if err := waitPing(ctx, a.NS, b.IP); err != nil {
		return r, err
	}
	if err := waitPing(ctx, a.NS, pods[by].IP); err != nil {
		return r, err
	}
	// New interfaces send IPv6 multicast (DAD, router and MLD solicitations) for a few
	// seconds, flooded to every node: let that pass, it is not transit.
	time.Sleep(3 * time.Second)

	// Transit: what reaches the bystander while a pings b, less what reaches it in an idle
	// window just as long (IPv6 multicast of the new pods, BPDUs, ARP: not transit).
	before, err := c.UnderlayPacketsTo(ctx, by)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	if got, err := a.Ping(ctx, b.IP, o.Pings, "-i", "0.01", "-q"); err != nil || got != o.Pings {
		return r, fmt.Errorf("%d pings %s → %s: %d back (%v)", o.Pings, a.Name, b.Name, got, err)
	}
	took := time.Since(t0)
	after, err := c.UnderlayPacketsTo(ctx, by)
	if err != nil {
		return r, err
	}
	time.Sleep(took)
	idleEnd, err := c.UnderlayPacketsTo(ctx, by)
	if err != nil {
		return r, err
	}
	r.Idle = idleEnd - after
	r.Transit = (after - before) - min(after-before, r.Idle)
	e.Logf("%s: %d pings %s → %s put %d underlay packets on %s (%d in an idle window as long)", protocol, o.Pings, a.Name, b.Name, after-before, by.Name, r.Idle)

	// Throughput, alternated so that drift in the machine's load hits both.
	for i := 0; i < 2; i++ {
		d, err := iperf(ctx, e, a.NS, endpoint{ns: b.NS, ip: b.IP}, o.Iperf)
		if err != nil {
			return r, err
		}
		h, err := iperf(ctx, e, a.NS, endpoint{ns: pods[by].NS, ip: pods[by].IP}, o.Iperf)
		if err != nil {
			return r, err
		}
		r.Direct, r.OneHop = max(r.Direct, d), max(r.OneHop, h)
	}
	e.Logf("%s: iperf3 %s → %s %s, %s → %s %s", protocol, a.Name, b.Name, gbps(r.Direct), a.Name, by.Name, gbps(r.OneHop))

	if o.SyntheticPeers > 0 {
		s, err := synthetic(ctx, e, c, o.SyntheticPeers)
		if err != nil {
			return r, err
		}
		r.Synthetic = &s
	}

	// A node dies: its OVS and agent are killed, its Node object stays (as when a machine
	// loses power), and the two others keep pinging.
	p, err := a.Start("ping-kill", "ping", "-i", "0.02", "-W", "1", b.IP)
	if err != nil {
		return r, err
	}
	defer p.Kill()
	time.Sleep(2 * time.Second)
	by.StopAgent()
	by.StopVswitchd()
	time.Sleep(o.KillWindow)
	p.Interrupt(5 * time.Second)
	out, _ := p.Output(time.Second)
	sent, got, ok := harness.PingSummary(out)
	if !ok {
		return r, fmt.Errorf("ping while %s died: no summary: %s", by.Name, proc.LastLines(out, 3))
	}
	r.KillSent, r.KillLost = sent, sent-got
	e.Logf("%s: %s killed: %d of %d pings %s → %s lost", protocol, by.Name, r.KillLost, r.KillSent, a.Name, b.Name)
	return r, nil
}

// bystander is the spanning-tree root (its bridge ID is the root ID it reports), or under
// SplitHorizon the first node.
func bystander(ctx context.Context, c *harness.Cluster, protocol string) (*harness.Node, error) {
	if protocol == string(v1alpha1.ProtocolSplitHorizon) {
		return c.Nodes[0], nil
	}
	bridgeKey, rootKey := "status:stp_bridge_id", "status:stp_designated_root"
	if protocol == string(v1alpha1.ProtocolRSTP) {
		bridgeKey, rootKey = "rstp_status:rstp_bridge_id", "rstp_status:rstp_root_id"
	}
	var ids []string
	for _, n := range c.Nodes {
		out, err := n.Vsctl(ctx, "get", "Bridge", "obr0", bridgeKey, rootKey)
		if err != nil {
			return nil, err
		}
		f := strings.Fields(strings.ReplaceAll(out, `"`, ""))
		ids = append(ids, strings.Join(f, " / "))
		if len(f) == 2 && f[0] == f[1] {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s: no node is its own root (bridge / root ids: %v)", protocol, ids)
}

// synthetic grows the mesh with Node objects (no machine behind them) until each real node
// needs peers tunnels, waits for every real agent to refuse with SpanningTreeLimit and the
// operator to report Degraded, checks that no bridge went beyond the limit, and measures the
// underlay for 5 s.
func synthetic(ctx context.Context, e *Env, c *harness.Cluster, peers int) (SyntheticResult, error) {
	s := SyntheticResult{Peers: peers}
	for i := len(c.Nodes); i <= peers; i++ {
		name := fmt.Sprintf("synthetic-%03d", i)
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := c.Client.Create(ctx, n); err != nil {
			return s, err
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.18.%d.%d", i/250, 1+i%250)}}
		if err := c.Client.Status().Update(ctx, n); err != nil {
			return s, err
		}
	}
	e.Logf("STP: %d synthetic Nodes created; waiting for the refusal", peers+1-len(c.Nodes))
	err := waitFor(ctx, 3*time.Minute, 500*time.Millisecond, func() bool {
		var nc v1alpha1.NetworkCluster
		if err := c.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.NetworkClusterName}, &nc); err != nil {
			return false
		}
		d := apimeta.FindStatusCondition(nc.Status.Conditions, v1alpha1.ConditionDegraded)
		if d == nil || d.Status != metav1.ConditionTrue || d.Reason != v1alpha1.ReasonSpanningTreeLimit {
			return false
		}
		for _, n := range c.Nodes {
			var ns v1alpha1.NodeSubnet
			if err := c.Client.Get(ctx, client.ObjectKey{Name: n.Name}, &ns); err != nil {
				return false
			}
			r := apimeta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionReady)
			if r == nil || r.Reason != v1alpha1.ReasonSpanningTreeLimit {
				return false
			}
		}
		return true
	})
	s.Refused = err == nil
	s.WithinLimit = true
	for _, n := range c.Nodes {
		ports, err := n.TunnelPorts(ctx)
		if err != nil {
			return s, err
		}
		s.MaxTunnels = max(s.MaxTunnels, len(ports))
		if len(ports) > v1alpha1.ProtocolSTP.MaxTunnels() {
			e.Logf("%s has %d tunnel ports after the refusal, more than STP's %d", n.Name, len(ports), v1alpha1.ProtocolSTP.MaxTunnels())
			s.WithinLimit = false
		}
	}
	before, err := c.UnderlayPackets(ctx)
	if err != nil {
		return s, err
	}
	time.Sleep(5 * time.Second)
	after, err := c.UnderlayPackets(ctx)
	if err != nil {
		return s, err
	}
	s.UnderlayRate = float64(after-before) / 5
	e.Logf("STP with %d peers: refused %v, at most %d tunnels on a node, underlay %.0f packets/s", peers, s.Refused, s.MaxTunnels, s.UnderlayRate)
	return s, nil
}
