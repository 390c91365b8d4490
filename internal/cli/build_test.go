package cli

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

func TestMatrix(t *testing.T) {
	in := StatusInput{Cluster: cluster(), LeasesRead: true, Subnets: []v1alpha1.NodeSubnet{
		subnet("node-c", 2, v1alpha1.ReasonOVSUnavailable), // listed first: the report sorts by name
		subnet("node-a", 0, v1alpha1.ReasonApplied, down("node-b")),
		subnet("node-b", 1, v1alpha1.ReasonApplied),
		subnet("node-d", 3, ""), // not reported yet
	}}
	r := BuildStatus(in, t0)
	want := Matrix{Nodes: []string{"node-a", "node-b", "node-c", "node-d"}, TotalNodes: 4, Cells: [][]string{
		{"self", "Down", "ok", "ok"},
		{"ok", "self", "ok", "ok"},
		{"?", "?", "self", "?"},
		{"?", "?", "?", "self"},
	}, Summary: "12 tunnels: 5 ok, 1 not ok, 6 unknown"}
	if !reflect.DeepEqual(r.Matrix, want) {
		t.Errorf("matrix\n got %+v\nwant %+v", r.Matrix, want)
	}
	if got := r.Nodes[2]; got.Name != "node-c" || got.Ready != "False" || got.Reason != v1alpha1.ReasonOVSUnavailable || got.PeersKnown {
		t.Errorf("node-c row: %+v", got)
	}
	if r.Nodes[3].Ready != "" || r.Nodes[3].Heartbeat.State != HeartbeatNone {
		t.Errorf("node-d row: %+v", r.Nodes[3])
	}
}

// An agent whose heartbeat expired is not vouched for: its row is unknown however healthy
// its last status looked.
func TestExpiredHeartbeatMakesRowUnknown(t *testing.T) {
	in := StatusInput{LeasesRead: true,
		Subnets: []v1alpha1.NodeSubnet{subnet("a", 0, v1alpha1.ReasonApplied), subnet("b", 1, v1alpha1.ReasonApplied)},
		Leases:  []coordinationv1.Lease{lease("a", t0.Add(-5*time.Second)), lease("b", t0.Add(-2*time.Minute))}}
	r := BuildStatus(in, t0)
	if hb := r.Nodes[0].Heartbeat; hb.State != HeartbeatLive || hb.AgeSeconds != 5 {
		t.Errorf("a: %+v", hb)
	}
	if hb := r.Nodes[1].Heartbeat; hb.State != HeartbeatExpired || hb.AgeSeconds != 120 || !hb.ExpiresAt.Equal(t0.Add(-80*time.Second)) {
		t.Errorf("b: %+v", hb)
	}
	if got := r.Matrix.Cells[1]; !reflect.DeepEqual(got, []string{"?", "self"}) {
		t.Errorf("b's row %v", got)
	}
	// Leases that could not be read: unknown, not "none", and the matrix does not guess.
	r = BuildStatus(StatusInput{Subnets: in.Subnets, Unreadable: []string{"x"}}, t0)
	if r.Nodes[0].Heartbeat.State != HeartbeatUnreadable || r.Matrix.Cells[0][1] != CellOK || len(r.Unreadable) != 1 {
		t.Errorf("unreadable leases: %+v", r)
	}
}

// A full unhealthy-peers list holds the first 16 by name: peers after the last are unknown,
// those before it that are not listed are ok.
func TestMatrixFullPeerList(t *testing.T) {
	var subnets []v1alpha1.NodeSubnet
	var peers []v1alpha1.PeerStatus
	for i := 1; i <= 20; i++ {
		name := fmt.Sprintf("n%02d", i)
		subnets = append(subnets, subnet(name, i, v1alpha1.ReasonApplied))
		if i%2 == 0 && len(peers) < v1alpha1.MaxUnhealthyPeers { // n02 … n32 would be listed; n02..n20 are
			peers = append(peers, down(name))
		}
	}
	subnets[0] = subnet("n01", 1, v1alpha1.ReasonApplied, peers[:10]...) // not full: n02..n20 even
	r := BuildStatus(StatusInput{Subnets: subnets, LeasesRead: true}, t0)
	if got := r.Matrix.Cells[0][19]; got != "Down" {
		t.Errorf("n01→n20 %q", got)
	}
	var many []v1alpha1.PeerStatus
	for i := 2; i <= 17; i++ {
		many = append(many, down(fmt.Sprintf("n%02d", i)))
	}
	subnets[0] = subnet("n01", 1, v1alpha1.ReasonApplied, many...) // full: n02..n17
	r = BuildStatus(StatusInput{Subnets: subnets, LeasesRead: true}, t0)
	row := r.Matrix.Cells[0]
	if row[16] != "Down" || row[17] != CellUnknown || row[19] != CellUnknown {
		t.Errorf("full list row: %v", row)
	}
}

func TestMatrixReducedAboveLimit(t *testing.T) {
	var subnets []v1alpha1.NodeSubnet
	for i := 0; i < 40; i++ {
		subnets = append(subnets, subnet(fmt.Sprintf("n%02d", i), i, v1alpha1.ReasonApplied))
	}
	r := BuildStatus(StatusInput{Subnets: subnets, LeasesRead: true}, t0)
	if m := r.Matrix; !m.Reduced || len(m.Nodes) != 0 || m.TotalNodes != 40 ||
		m.Summary != "1560 tunnels: 1560 ok, 0 not ok, 0 unknown; 40 nodes is more than 30, and none has a problem: matrix not shown" {
		t.Errorf("healthy 40: %+v", m)
	}
	subnets[3] = subnet("n03", 3, v1alpha1.ReasonApplied, down("n17"))
	subnets[25] = subnet("n25", 25, v1alpha1.ReasonOVSUnavailable)
	r = BuildStatus(StatusInput{Subnets: subnets, LeasesRead: true}, t0)
	m := r.Matrix
	// n03 reports, n17 is reported, n25's row is unknown; n25's "?" column pulls nobody in.
	if !reflect.DeepEqual(m.Nodes, []string{"n03", "n17", "n25"}) {
		t.Fatalf("nodes %v", m.Nodes)
	}
	want := [][]string{{"self", "Down", "ok"}, {"ok", "self", "ok"}, {"?", "?", "self"}}
	if !reflect.DeepEqual(m.Cells, want) {
		t.Errorf("cells %v", m.Cells)
	}
	if !strings.HasSuffix(m.Summary, "showing only the 3 with a problem, the other 37 see each other ok") ||
		!strings.HasPrefix(m.Summary, "1560 tunnels: 1520 ok, 1 not ok, 39 unknown") {
		t.Errorf("summary %q", m.Summary)
	}
	// 30 is still shown whole.
	if m := BuildMatrix(r.Nodes[:30], MatrixLimit); m.Reduced || len(m.Nodes) != 30 {
		t.Errorf("30 nodes reduced: %v", m.Reduced)
	}
}

func TestLiveness(t *testing.T) {
	live := Heartbeat{State: HeartbeatLive}
	for _, c := range []struct {
		reason, ovsdb, vswitchd string
		hb                      Heartbeat
	}{
		{v1alpha1.ReasonApplied, "ok", "ok", live},
		{v1alpha1.ReasonSpanningTreeConverging, "ok", "ok", live},
		{v1alpha1.ReasonVswitchdUnavailable, "ok", "unavailable", live},
		{v1alpha1.ReasonOVSUnavailable, "unavailable", "unknown", live},
		{v1alpha1.ReasonOVSError, "error", "unknown", live},
		{"HostConflict", "unknown", "unknown", live},
		{v1alpha1.ReasonApplied, "unknown", "unknown", Heartbeat{State: HeartbeatExpired}},
	} {
		o, v := liveness(&Condition{Reason: c.reason, Message: "m"}, c.hb)
		if o.State != c.ovsdb || v.State != c.vswitchd {
			t.Errorf("%s (heartbeat %s): ovsdb %s vswitchd %s, want %s %s", c.reason, c.hb.State, o.State, v.State, c.ovsdb, c.vswitchd)
		}
	}
}

func TestMTUInfo(t *testing.T) {
	ns := subnet("a", 0, v1alpha1.ReasonApplied)
	nc := cluster()
	m := mtuInfo(nc, &ns)
	if m.InUse != 1458 || m.Overhead != 42 || m.Underlay != 1500 || m.TunnelType != "GRE" {
		t.Errorf("automatic GRE: %+v", m)
	}
	nc.Spec.Tunnel.Type, nc.Spec.MTU = v1alpha1.TunnelVXLAN, 1458
	m = mtuInfo(nc, &ns)
	if m.Overhead != 50 || m.Underlay != 0 || m.UnderlayAtLeast != 1508 || !strings.Contains(m.Note, "not in the API") {
		t.Errorf("fixed VXLAN: %+v", m)
	}
	nc.Spec.MTU = 1400
	if m = mtuInfo(nc, &ns); !strings.Contains(m.Note, "still uses 1458") {
		t.Errorf("spec changed: %+v", m)
	}
	if m = mtuInfo(nil, &ns); m.InUse != 1458 || m.Overhead != 0 || !strings.Contains(m.Note, "could not be read") {
		t.Errorf("no cluster: %+v", m)
	}
}

func TestBuildDiagnose(t *testing.T) {
	a, b := subnet("node-a", 0, v1alpha1.ReasonApplied, down("node-b")), subnet("node-b", 1, v1alpha1.ReasonVswitchdUnavailable)
	l := lease("node-b", t0.Add(-90*time.Second))
	r := BuildDiagnose(DiagnoseInput{Node: "node-b", NodeFound: true, Cluster: cluster(), Subnet: &b,
		Subnets: []v1alpha1.NodeSubnet{a, b}, Lease: &l, LeaseRead: true}, t0)
	if !r.SubnetFound || r.Ready == nil || r.Ready.Reason != v1alpha1.ReasonVswitchdUnavailable || r.Heartbeat.State != HeartbeatExpired {
		t.Errorf("report %+v", r)
	}
	if r.OVSDB.State != "unknown" { // the expired heartbeat wins over the stale reason
		t.Errorf("ovsdb %+v", r.OVSDB)
	}
	if !reflect.DeepEqual(r.SeenByPeers, []PeerView{{Node: "node-a", Reason: "Down", Message: "BFD: no answer"}}) {
		t.Errorf("seen by %+v", r.SeenByPeers)
	}
	if r.Drift != DriftNone || r.Events == nil || r.AgentPods == nil || r.Unreadable == nil {
		t.Errorf("empty lists must be [] in JSON: %+v", r)
	}
}

// TestDiagnoseDrift: the drift line counts the agent's DriftRepaired Events about the node,
// folded series included, and quotes the latest; other nodes' and other reasons are not drift.
func TestDiagnoseDrift(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ev := func(node, reason, note string, ago time.Duration, count int32) eventsv1.Event {
		e := eventsv1.Event{Reason: reason, Note: note, Type: "Normal", ReportingController: "ovsmesh-agent",
			Regarding: corev1.ObjectReference{Kind: "NodeSubnet", Name: node}, EventTime: metav1.NewMicroTime(t0.Add(-ago))}
		if count > 1 {
			e.Series = &eventsv1.EventSeries{Count: count, LastObservedTime: metav1.NewMicroTime(t0.Add(-ago))}
		}
		return e
	}
	in := DiagnoseInput{Node: "node-a", NodeFound: true, Events: []eventsv1.Event{
		ev("node-a", "DriftRepaired", "repaired: kbr0: up", 10*time.Minute, 3),
		ev("node-a", "DriftRepaired", "repaired: route 10.244.0.0/16 dev kbr0: set", time.Minute, 1),
		ev("node-a", "NodeReady", "2 gre tunnels", 30*time.Second, 1),
		ev("node-b", "DriftRepaired", "repaired: elsewhere", 5*time.Second, 1),
	}}
	r := BuildDiagnose(in, t0)
	want := "4 repaired (Events DriftRepaired); latest 1m0s ago: repaired: route 10.244.0.0/16 dev kbr0: set"
	if r.Drift != want {
		t.Errorf("drift %q, want %q", r.Drift, want)
	}
	if len(r.Events) != 3 {
		t.Errorf("%d events about node-a, want 3", len(r.Events))
	}
}
