package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	cniconfig "github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/hostnet"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// ports builds the port states OVS would report for n1's tunnels to n2 and n3 (GRE), plus
// the veth, with f filling in each tunnel's state.
func ports(f func(i int, p *ovs.PortState)) []ovs.PortState {
	// The veth forwards (both protocols' fields set: each reads its own).
	out := []ovs.PortState{{Name: "vobr0", Owned: true, Live: true, STPState: "forwarding", RSTPState: "Forwarding"}}
	for i, name := range []string{"gre-ac1e0002", "gre-ac1e0003"} {
		p := ovs.PortState{Name: name, Owned: true, Peer: []string{"n2", "n3"}[i], InterfaceType: "gre", Live: true}
		f(i, &p)
		out = append(out, p)
	}
	return out
}

func TestReadyStatus(t *testing.T) {
	s, err := Desired(defaultSpec(), threeNodes(), "n1", 1500)
	if err != nil {
		t.Fatal(err)
	}
	s.OVS.BFD = true
	r := Result{Tunnels: tunnelReport(s.OVS, ports(func(i int, p *ovs.PortState) {
		p.STPState, p.STPRole, p.BFDState = []string{"forwarding", "blocking"}[i], []string{"root", "alternate"}[i], []string{"up", "down"}[i]
	}))}
	old := v1alpha1.NodeSubnetStatus{Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonCleanedUp},
	}}
	st := readyStatus(old, 7, s, r)
	wantSum := v1alpha1.TunnelSummary{Desired: 2, Live: 2, Forwarding: 1, Blocked: 1, Up: 1, Down: 1}
	if st.ObservedGeneration != 7 || st.TunnelCount != 2 || st.MTU != 1458 || st.Tunnels != wantSum {
		t.Errorf("status = %+v", st)
	}
	// The peer BFD calls down is listed; the healthy one is not.
	if len(st.UnhealthyPeers) != 1 || st.UnhealthyPeers[0].NodeName != "n3" || st.UnhealthyPeers[0].Reason != v1alpha1.PeerReasonDown ||
		st.UnhealthyPeers[0].Port != "gre-ac1e0003" || st.UnhealthyPeers[0].STPState != "blocking" {
		t.Errorf("unhealthy peers = %+v", st.UnhealthyPeers)
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonApplied ||
		c.Message != "2 gre tunnels on obr0 (STP), MTU 1458, BFD: 1/2 peers up" || c.ObservedGeneration != 7 {
		t.Errorf("Ready = %+v", c)
	}
	if meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCleanedUp) != nil {
		t.Error("CleanedUp kept on an active node")
	}
	if len(old.Conditions) != 1 || old.Conditions[0].Type != v1alpha1.ConditionCleanedUp {
		t.Error("readyStatus modified its input")
	}
	// Same inputs → same status, so the reconciler's DeepEqual skips the patch.
	if again := readyStatus(st, 7, s, r); !reflect.DeepEqual(again, st) {
		t.Errorf("not stable:\n%+v\n%+v", st, again)
	}
}

// TestReadyMeansForwarding: Ready is True only when every tunnel carries traffic or is held
// back by spanning tree on purpose, in each of the three modes. RSTP's states are
// capitalised and its Discarding is stable only as Alternate/Backup.
func TestReadyMeansForwarding(t *testing.T) {
	type port struct{ state, role string }
	for _, tc := range []struct {
		proto  v1alpha1.LoopPreventionProtocol
		ports  [2]port
		live   [2]bool
		prot   [2]bool
		ready  metav1.ConditionStatus
		reason string
	}{
		{v1alpha1.ProtocolSTP, [2]port{{"forwarding", "root"}, {"blocking", "alternate"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionTrue, v1alpha1.ReasonApplied},
		{v1alpha1.ProtocolSTP, [2]port{{"forwarding", "root"}, {"blocking", "designated"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		{v1alpha1.ProtocolSTP, [2]port{{"forwarding", "root"}, {"learning", "designated"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		{v1alpha1.ProtocolSTP, [2]port{{"listening", "designated"}, {"listening", "designated"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		{v1alpha1.ProtocolSTP, [2]port{{"forwarding", "root"}, {"", ""}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		{v1alpha1.ProtocolSTP, [2]port{{"forwarding", "root"}, {"forwarding", "designated"}}, [2]bool{true, false}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		{v1alpha1.ProtocolRSTP, [2]port{{"Forwarding", "Root"}, {"Discarding", "Alternate"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionTrue, v1alpha1.ReasonApplied},
		{v1alpha1.ProtocolRSTP, [2]port{{"Forwarding", "Root"}, {"Discarding", "Designated"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		{v1alpha1.ProtocolRSTP, [2]port{{"Forwarding", "Root"}, {"Learning", "Designated"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		// A STP-state string under RSTP (a bridge that has not switched yet) is not RSTP forwarding.
		{v1alpha1.ProtocolRSTP, [2]port{{"forwarding", "root"}, {"forwarding", "root"}}, [2]bool{true, true}, [2]bool{}, metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging},
		{v1alpha1.ProtocolSplitHorizon, [2]port{}, [2]bool{true, true}, [2]bool{true, true}, metav1.ConditionTrue, v1alpha1.ReasonApplied},
		{v1alpha1.ProtocolSplitHorizon, [2]port{}, [2]bool{true, false}, [2]bool{true, true}, metav1.ConditionFalse, v1alpha1.ReasonTunnelsNotLive},
		{v1alpha1.ProtocolSplitHorizon, [2]port{}, [2]bool{true, true}, [2]bool{true, false}, metav1.ConditionFalse, v1alpha1.ReasonTunnelsNotLive},
	} {
		spec := defaultSpec()
		spec.LoopPrevention.Protocol = tc.proto
		s, err := Desired(spec, threeNodes(), "n1", 1500)
		if err != nil {
			t.Fatal(err)
		}
		r := Result{Tunnels: tunnelReport(s.OVS, ports(func(i int, p *ovs.PortState) {
			if tc.proto == v1alpha1.ProtocolRSTP {
				p.RSTPState, p.RSTPRole = tc.ports[i].state, tc.ports[i].role
			} else {
				p.STPState, p.STPRole = tc.ports[i].state, tc.ports[i].role
			}
			p.Live, p.Protected = tc.live[i], tc.prot[i]
		}))}
		st := readyStatus(v1alpha1.NodeSubnetStatus{}, 1, s, r)
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != tc.ready || c.Reason != tc.reason {
			t.Errorf("%s %v live %v protected %v: Ready = %+v, want %s %s", tc.proto, tc.ports, tc.live, tc.prot, c, tc.ready, tc.reason)
			continue
		}
		if sum := st.Tunnels; sum.Forwarding+sum.Blocked+sum.Converging+sum.Missing != 2 {
			t.Errorf("%s %v: counts do not add up to the 2 desired tunnels: %+v", tc.proto, tc.ports, sum)
		}
		if (tc.ready == metav1.ConditionTrue) != (len(st.UnhealthyPeers) == 0) {
			t.Errorf("%s %v: Ready %s with unhealthy peers %+v", tc.proto, tc.ports, tc.ready, st.UnhealthyPeers)
		}
	}
}

// TestReadyWaitsForTheVeth: the tunnels are settled, but the veth into kbr0 is still
// discarding (RSTP proposes on it like on any port): the pods cannot reach the mesh yet.
func TestReadyWaitsForTheVeth(t *testing.T) {
	spec := defaultSpec()
	spec.LoopPrevention.Protocol = v1alpha1.ProtocolRSTP
	s, err := Desired(spec, threeNodes(), "n1", 1500)
	if err != nil {
		t.Fatal(err)
	}
	ps := ports(func(i int, p *ovs.PortState) { p.RSTPState, p.RSTPRole = "Forwarding", "Designated" })
	ps[0].RSTPState, ps[0].RSTPRole = "Discarding", "Designated"
	c := meta.FindStatusCondition(readyStatus(v1alpha1.NodeSubnetStatus{}, 1, s, Result{Tunnels: tunnelReport(s.OVS, ps)}).Conditions, v1alpha1.ConditionReady)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSpanningTreeConverging ||
		!strings.Contains(c.Message, "the veth port vobr0 does not forward yet (RSTP has not settled the port yet)") {
		t.Errorf("Ready = %+v", c)
	}
	spec.LoopPrevention.Protocol = v1alpha1.ProtocolSplitHorizon // no tree: live is enough
	s, _ = Desired(spec, threeNodes(), "n1", 1500)
	ps = ports(func(i int, p *ovs.PortState) { p.Protected = true })
	ps[0].STPState, ps[0].RSTPState = "", ""
	if r := tunnelReport(s.OVS, ps); !r.Ready() {
		t.Errorf("split horizon, live veth and protected tunnels: not ready: %+v", r)
	}
}

// TestStatusIsBounded: 3,000 peers, all of them converging, and the status still lists at
// most MaxUnhealthyPeers, first by name, with the counts saying how many there are.
func TestStatusIsBounded(t *testing.T) {
	spec := defaultSpec()
	spec.LoopPrevention.Protocol = v1alpha1.ProtocolRSTP
	subnets := []v1alpha1.NodeSubnet{subnet("n0", "10.244.0.0/24", "10.244.0.1", "172.16.0.1")}
	for i := 1; i <= 3000; i++ {
		subnets = append(subnets, subnet(fmt.Sprintf("p%04d", i), fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256),
			fmt.Sprintf("10.%d.%d.1", 100+i/256, i%256), fmt.Sprintf("172.17.%d.%d", i/250, 1+i%250)))
	}
	spec.ClusterCIDR = "10.0.0.0/8"
	s, err := Desired(spec, subnets, "n0", 1500)
	if err != nil {
		t.Fatal(err)
	}
	states := []ovs.PortState{{Name: "vobr0", Owned: true, Live: true, RSTPState: "Forwarding", RSTPRole: "Designated"}}
	for _, ts := range s.OVS.Tunnels[:2990] { // 10 not on the bridge yet
		states = append(states, ovs.PortState{Name: ovs.PortName(ts), Owned: true, Peer: ts.PeerName, Live: true,
			RSTPState: "Learning", RSTPRole: "Designated"})
	}
	st := readyStatus(v1alpha1.NodeSubnetStatus{}, 1, s, Result{Tunnels: tunnelReport(s.OVS, states)})
	if want := (v1alpha1.TunnelSummary{Desired: 3000, Live: 2990, Converging: 2990, Missing: 10}); st.Tunnels != want {
		t.Errorf("summary = %+v, want %+v", st.Tunnels, want)
	}
	if len(st.UnhealthyPeers) != v1alpha1.MaxUnhealthyPeers || st.UnhealthyPeers[0].NodeName != "p0001" ||
		st.UnhealthyPeers[0].Reason != v1alpha1.PeerReasonConverging || st.UnhealthyPeers[0].Message != "RSTP has not settled the port yet" || st.UnhealthyPeers[0].STPState != "" {
		t.Errorf("unhealthy peers: %d, first %+v", len(st.UnhealthyPeers), st.UnhealthyPeers[0])
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSpanningTreeConverging ||
		!strings.Contains(c.Message, "converging on 3000 of 3000 tunnel ports (first: p0001, Converging: RSTP has not settled the port yet)") {
		t.Errorf("Ready = %+v", c)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 4096 {
		t.Errorf("status of a node with 3,000 peers is %d bytes of JSON, want at most 4 KiB:\n%s", len(b), b)
	}
	t.Logf("status with 3,000 peers: %d bytes of JSON", len(b))
}

// TestTunnelLimit: the guard refuses a mesh beyond the protocol's port limit, says which
// limit and the way out, and lets everything within it through.
func TestTunnelLimit(t *testing.T) {
	tunnelsOf := func(n int) []ovs.TunnelSpec {
		out := make([]ovs.TunnelSpec, n)
		for i := range out {
			out[i] = ovs.TunnelSpec{PeerName: fmt.Sprintf("p%d", i)}
		}
		return out
	}
	for _, tc := range []struct {
		proto v1alpha1.LoopPreventionProtocol
		peers int
		ok    bool
		way   string
	}{
		{v1alpha1.ProtocolSTP, 254, true, ""},
		{v1alpha1.ProtocolSTP, 255, false, "SplitHorizon (no limit) or RSTP (up to 4094)"},
		{v1alpha1.ProtocolRSTP, 4094, true, ""},
		{v1alpha1.ProtocolRSTP, 4095, false, "to SplitHorizon (no limit)"},
		{v1alpha1.ProtocolSplitHorizon, 10000, true, ""},
	} {
		err := checkTunnelLimit(OVSState{Bridge: ovs.BridgeSpec{Name: "obr0"}, Protocol: tc.proto, Tunnels: tunnelsOf(tc.peers)})
		if (err == nil) != tc.ok {
			t.Errorf("%s with %d peers: err = %v, want ok=%v", tc.proto, tc.peers, err, tc.ok)
			continue
		}
		if err != nil && (ReasonOf(err) != v1alpha1.ReasonSpanningTreeLimit || !strings.Contains(err.Error(), tc.way) ||
			!strings.Contains(err.Error(), fmt.Sprintf("at most %d", tc.proto.MaxTunnels()))) {
			t.Errorf("%s with %d peers: %s: %v", tc.proto, tc.peers, ReasonOf(err), err)
		}
	}
}

func TestNotReadyStatusCarriesReason(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{withReason(v1alpha1.ReasonNoUnderlay, fmt.Errorf("x: %w", hostnet.ErrNoUnderlay)), v1alpha1.ReasonNoUnderlay},
		{withReason(v1alpha1.ReasonHostConflict, &hostnet.ConflictError{Link: "kbr0", What: "has 10.9.9.1/24"}), v1alpha1.ReasonHostConflict},
		{withReason(v1alpha1.ReasonOVSUnavailable, errors.New("socket missing")), v1alpha1.ReasonOVSUnavailable},
		{errors.New("unclassified"), v1alpha1.ReasonHostError},
	} {
		st := notReadyStatus(v1alpha1.NodeSubnetStatus{MTU: 1450}, 3, tc.err)
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason || c.Message != tc.err.Error() {
			t.Errorf("%v: Ready = %+v", tc.err, c)
		}
		if st.MTU != 1450 {
			t.Error("notReadyStatus dropped what is still on the node")
		}
	}
}

func TestCleanedStatus(t *testing.T) {
	st := cleanedStatus(v1alpha1.NodeSubnetStatus{TunnelCount: 2, MTU: 1450, Tunnels: v1alpha1.TunnelSummary{Desired: 2},
		UnhealthyPeers: []v1alpha1.PeerStatus{{NodeName: "n2"}}}, 4, nil)
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCleanedUp)
	if c == nil || c.Status != metav1.ConditionTrue || st.TunnelCount != 0 || st.UnhealthyPeers != nil || st.Tunnels.Desired != 0 || st.MTU != 0 {
		t.Errorf("status = %+v", st)
	}
	if r := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); r == nil || r.Status != metav1.ConditionFalse || r.Reason != v1alpha1.ReasonTornDown {
		t.Errorf("Ready = %+v", r)
	}
	st = cleanedStatus(v1alpha1.NodeSubnetStatus{}, 4, errors.New("boom"))
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCleanedUp); c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonCleanupFailed {
		t.Errorf("CleanedUp on failure = %+v", c)
	}
}

func TestRenderCNI(t *testing.T) {
	s, err := Desired(defaultSpec(), threeNodes(), "n2", 1500)
	if err != nil {
		t.Fatal(err)
	}
	b, err := renderCNI(s.CNI, "/var/lib/ovsmesh/ipam")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cniVersion": "1.1.0", "name": "ovsmesh",
		"plugins": []any{
			map[string]any{"type": "ovsmesh", "bridge": "kbr0", "mtu": 1458.0, "ipam": map[string]any{
				"type":    "ovsmesh-host-local",
				"ranges":  []any{[]any{map[string]any{"subnet": "10.244.2.0/24", "gateway": "10.244.2.1"}}},
				"routes":  []any{map[string]any{"dst": "10.244.0.0/16"}, map[string]any{"dst": "0.0.0.0/0"}},
				"dataDir": "/var/lib/ovsmesh/ipam",
			}},
			map[string]any{"type": "ovsmesh-portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conflist:\n%s", b)
	}
	if _, err := renderCNI(cniconfig.Input{}, ""); err == nil {
		t.Error("empty config rendered")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d") // created on first write
	changed, err := writeFileAtomic(dir, CNIConfFile, []byte("a\n"))
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	target := filepath.Join(dir, CNIConfFile)
	fi1, _ := os.Stat(target)
	time.Sleep(10 * time.Millisecond)
	if changed, err = writeFileAtomic(dir, CNIConfFile, []byte("a\n")); err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v, want no write", changed, err)
	}
	fi2, _ := os.Stat(target)
	if !fi1.ModTime().Equal(fi2.ModTime()) || !os.SameFile(fi1, fi2) {
		t.Error("unchanged content rewrote the file")
	}
	if changed, err = writeFileAtomic(dir, CNIConfFile, []byte("b\n")); err != nil || !changed {
		t.Fatalf("new content: %v %v", changed, err)
	}
	b, _ := os.ReadFile(target)
	fi3, _ := os.Stat(target)
	if string(b) != "b\n" || fi3.Mode().Perm() != 0o644 || os.SameFile(fi2, fi3) {
		t.Errorf("after rewrite: %q %v (renamed over: %v)", b, fi3.Mode(), !os.SameFile(fi2, fi3))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	if removed, err := removeFile(dir, CNIConfFile); err != nil || !removed {
		t.Errorf("remove: %v %v", removed, err)
	}
	if removed, err := removeFile(dir, CNIConfFile); err != nil || removed {
		t.Errorf("second remove: %v %v", removed, err)
	}
}

// TestSkippedPeersAreReportedNotFatal: a peer left out for its address is counted and listed
// with its reason, and Ready stays True: the rest of the mesh is fine.
func TestSkippedPeersAreReportedNotFatal(t *testing.T) {
	subnets := append(threeNodes(), subnet("n9", "10.244.9.0/24", "10.244.9.1", "0.0.0.0"))
	s, err := Desired(defaultSpec(), subnets, "n1", 1500)
	if err != nil {
		t.Fatal(err)
	}
	st := readyStatus(v1alpha1.NodeSubnetStatus{}, 1, s, Result{Tunnels: tunnelReport(s.OVS, ports(func(i int, p *ovs.PortState) {
		p.STPState, p.STPRole = "forwarding", "designated"
	}))})
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "1 peers left out for their address") {
		t.Errorf("Ready = %+v", c)
	}
	if st.Tunnels.Skipped != 1 || st.Tunnels.Desired != 2 || len(st.UnhealthyPeers) != 1 ||
		st.UnhealthyPeers[0].NodeName != "n9" || st.UnhealthyPeers[0].Reason != v1alpha1.PeerReasonUnusableAddress ||
		!strings.Contains(st.UnhealthyPeers[0].Message, "unspecified") {
		t.Errorf("status = %+v", st)
	}
}
