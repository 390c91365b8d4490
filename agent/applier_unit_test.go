package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/hostnet"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// The tests of this file run the Applier against hostnet.Fake and FakeOVS: no root, no
// namespace, no ovsdb-server. What they pin is the Applier's own logic (order, error
// mapping, idempotency, cleanup); TestApplyAgainstRealOVS and the reconciler tests keep
// checking the same against the real thing.

// fakeNode is node n1 of threeNodes (or of the given NodeSubnets) behind the fakes, with
// its underlay eth0 (MTU 1500: GRE leaves 1458).
type fakeNode struct {
	host *hostnet.Fake
	ovs  *FakeOVS
	a    *Applier
	s    NodeState
	// seq is every call to either fake, in order, as "host.Method" or "ovs.Method", with
	// " +cni" when the CNI config existed at the time of the call.
	seq []string
}

func newFakeNode(t *testing.T, spec v1alpha1.NetworkClusterSpec, subnets []v1alpha1.NodeSubnet) *fakeNode {
	t.Helper()
	n := &fakeNode{host: hostnet.NewFake(), ovs: NewFakeOVS()}
	n.host.AddLink(hostnet.FakeLink{Name: "eth0", Kind: "dummy", MTU: 1500, Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("172.30.0.1/24")}})
	u, err := n.host.FindUnderlay("", mustAddr("172.30.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if n.s, err = Desired(spec, subnets, "n1", u.MTU); err != nil {
		t.Fatal(err)
	}
	n.host.ResetCalls()
	n.a = &Applier{Host: n.host, OVS: n.ovs, CNIConfDir: filepath.Join(t.TempDir(), "net.d"), Log: testr.New(t)}
	n.host.OnCall = func(m string) { n.seq = append(n.seq, "host."+m+n.cniMark()) }
	n.ovs.OnCall = func(m string) { n.seq = append(n.seq, "ovs."+m+n.cniMark()) }
	return n
}

func (n *fakeNode) cniMark() string {
	if n.cniExists() {
		return " +cni"
	}
	return ""
}

func (n *fakeNode) cniExists() bool {
	_, err := os.Lstat(filepath.Join(n.a.CNIConfDir, CNIConfFile))
	return err == nil
}

var hostSteps = []string{"host.EnsureIPForwarding", "host.EnsureBridge", "host.EnsureNoRedirects",
	"host.EnsureVethPair", "host.EnsureRoute", "host.EnsureMasquerade"}

// TestApplierRunsInOrder: host side (in hostnet.Apply's order), the veth's ifindex, OVS,
// ovs-vswitchd's liveness, then the CNI config, and only then the port states: the CNI
// config, which tells the kubelet the network is ready, appears after the OVS side is
// programmed and ovs-vswitchd answers.
func TestApplierRunsInOrder(t *testing.T) {
	n := newFakeNode(t, defaultSpec(), threeNodes())
	r, err := n.a.Apply(context.Background(), n.s)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(hostSteps), "host.LinkIndex", "ovs.Apply", "ovs.VswitchdAlive", "ovs.Ports +cni")
	if !reflect.DeepEqual(n.seq, want) {
		t.Errorf("calls:\n%q\nwant\n%q", n.seq, want)
	}
	if !r.CNIWritten || len(r.HostChanges) == 0 || r.OVSOps == 0 {
		t.Errorf("first apply: %+v", r)
	}
	checkCNI(t, n.a.CNIConfDir, "kbr0", 1458)
	if c := n.ovs.Calls(); c[len(c)-1].Bridge != "obr0" {
		t.Errorf("ports read of bridge %q", c[len(c)-1].Bridge)
	}
	// No port states configured: the fake reports none, and so both tunnels are missing.
	if r.Tunnels.Summary.Desired != 2 || r.Tunnels.Summary.Missing != 2 || r.Tunnels.Ready() {
		t.Errorf("tunnels = %+v", r.Tunnels)
	}
}

// TestApplierReportsPortStates: what OVS reports of the ports is what the result says.
func TestApplierReportsPortStates(t *testing.T) {
	n := newFakeNode(t, defaultSpec(), threeNodes())
	fwd := func(name, peer string) ovs.PortState {
		return ovs.PortState{Name: name, Owned: true, Peer: peer, Live: true, STPState: "forwarding"}
	}
	n.ovs.PortStates["obr0"] = []ovs.PortState{fwd("vobr0", ""), fwd("gre-ac1e0002", "n2"), fwd("gre-ac1e0003", "n3")}
	r, err := n.a.Apply(context.Background(), n.s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tunnels.Count != 2 || r.Tunnels.Summary.Missing != 0 || !r.Tunnels.Ready() {
		t.Errorf("tunnels = %+v", r.Tunnels)
	}
}

// TestApplierFailureReasons: each failure maps to its Ready reason, stops the pass where it
// happened, and — before the CNI step — leaves no CNI config.
func TestApplierFailureReasons(t *testing.T) {
	boom := errors.New("boom")
	conflict := &hostnet.ConflictError{Link: "kbr0", What: "injected"}
	type tc struct {
		name   string
		setup  func(t *testing.T, n *fakeNode)
		reason string
		// last is the last call made: nothing after it.
		last string
		// cni: the CNI config is written (the failure comes after it).
		cni bool
	}
	tests := []tc{
		{name: "host conflict", setup: func(t *testing.T, n *fakeNode) { n.host.Fail["EnsureVethPair"] = conflict },
			reason: v1alpha1.ReasonHostConflict, last: "host.EnsureVethPair"},
		{name: "wrapped host conflict", setup: func(t *testing.T, n *fakeNode) {
			n.host.Fail["EnsureRoute"] = fmt.Errorf("route: %w", conflict)
		}, reason: v1alpha1.ReasonHostConflict, last: "host.EnsureRoute"},
		{name: "foreign address on kbr0", setup: func(t *testing.T, n *fakeNode) {
			n.host.AddLink(hostnet.FakeLink{Name: "kbr0", Kind: "bridge", MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.9.1/24")}})
		}, reason: v1alpha1.ReasonHostConflict, last: "host.EnsureBridge"},
		{name: "foreign route to the cluster CIDR", setup: func(t *testing.T, n *fakeNode) {
			n.host.AddLink(hostnet.FakeLink{Name: "tun0", Kind: "tun", MTU: 1400})
			n.host.Routes = []hostnet.FakeRoute{{Dst: netip.MustParsePrefix("10.244.0.0/16"), Dev: "tun0", Protocol: 4}}
		}, reason: v1alpha1.ReasonHostConflict, last: "host.EnsureRoute"},
		{name: "veth ifindex unreadable", setup: func(t *testing.T, n *fakeNode) { n.host.Fail["LinkIndex"] = boom },
			reason: v1alpha1.ReasonHostError, last: "host.LinkIndex"},
		{name: "ovsdb-server down", setup: func(t *testing.T, n *fakeNode) {
			n.ovs.Fail["Apply"] = fmt.Errorf("transact: %w", ovs.ErrUnavailable)
		}, reason: v1alpha1.ReasonOVSUnavailable, last: "ovs.Apply"},
		{name: "transaction refused", setup: func(t *testing.T, n *fakeNode) { n.ovs.Fail["Apply"] = boom },
			reason: v1alpha1.ReasonOVSError, last: "ovs.Apply"},
		{name: "ovs-vswitchd dead", setup: func(t *testing.T, n *fakeNode) { n.ovs.Fail["VswitchdAlive"] = boom },
			reason: v1alpha1.ReasonVswitchdUnavailable, last: "ovs.VswitchdAlive"},
		{name: "CNI dir unwritable", setup: func(t *testing.T, n *fakeNode) {
			// Under a regular file: no directory can be made there, not even by root.
			file := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			n.a.CNIConfDir = filepath.Join(file, "net.d")
		}, reason: v1alpha1.ReasonCNIConfigError, last: "ovs.VswitchdAlive"},
		{name: "CNI plugins not installed", setup: func(t *testing.T, n *fakeNode) { n.a.CNIBinDir = t.TempDir() },
			reason: v1alpha1.ReasonCNIConfigError, last: "ovs.VswitchdAlive"},
		{name: "ovsdb-server down at the port read", setup: func(t *testing.T, n *fakeNode) {
			n.ovs.Fail["Ports"] = ovs.ErrUnavailable
		}, reason: v1alpha1.ReasonOVSUnavailable, last: "ovs.Ports +cni", cni: true},
	}
	for _, m := range hostSteps {
		tests = append(tests, tc{name: m + " fails", setup: func(t *testing.T, n *fakeNode) {
			n.host.Fail[strings.TrimPrefix(m, "host.")] = boom
		}, reason: v1alpha1.ReasonHostError, last: m})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode(t, defaultSpec(), threeNodes())
			tc.setup(t, n)
			r, err := n.a.Apply(context.Background(), n.s)
			if err == nil {
				t.Fatalf("Apply succeeded: %+v", r)
			}
			if got := ReasonOf(err); got != tc.reason {
				t.Errorf("reason %s, want %s (%v)", got, tc.reason, err)
			}
			if len(n.seq) == 0 || n.seq[len(n.seq)-1] != tc.last {
				t.Errorf("calls %q, want the last to be %s", n.seq, tc.last)
			}
			if n.cniExists() != tc.cni || r.CNIWritten != tc.cni {
				t.Errorf("CNI config present %v, written %v; want %v", n.cniExists(), r.CNIWritten, tc.cni)
			}
		})
	}
}

// TestApplierWithoutOVS: with no OVS side (ovsdb-server never reached) the host side is
// still applied, nothing else is done and the reason is OVSUnavailable.
func TestApplierWithoutOVS(t *testing.T) {
	n := newFakeNode(t, defaultSpec(), threeNodes())
	n.a.OVS = nil
	r, err := n.a.Apply(context.Background(), n.s)
	if got := ReasonOf(err); got != v1alpha1.ReasonOVSUnavailable {
		t.Errorf("reason %s (%v), want OVSUnavailable", got, err)
	}
	if !reflect.DeepEqual(n.seq[:len(hostSteps)], hostSteps) || len(r.HostChanges) == 0 {
		t.Errorf("host side not applied: calls %q, changes %v", n.seq, r.HostChanges)
	}
	if n.cniExists() || len(n.ovs.Calls()) != 0 {
		t.Errorf("CNI config present %v, OVS calls %v", n.cniExists(), n.ovs.Methods())
	}
}

// TestApplierTunnelLimit: more peers than STP covers is SpanningTreeLimit, and OVS is left
// as it is.
func TestApplierTunnelLimit(t *testing.T) {
	subnets := threeNodes()
	for i := 0; len(subnets) <= v1alpha1.ProtocolSTP.MaxTunnels()+1; i++ {
		if i >= 1 && i <= 3 {
			continue
		}
		subnets = append(subnets, subnet(fmt.Sprintf("m%03d", i), fmt.Sprintf("10.244.%d.0/24", i), fmt.Sprintf("10.244.%d.1", i), fmt.Sprintf("172.30.1.%d", i)))
	}
	n := newFakeNode(t, defaultSpec(), subnets)
	if len(n.s.OVS.Tunnels) <= v1alpha1.ProtocolSTP.MaxTunnels() {
		t.Fatalf("only %d peers", len(n.s.OVS.Tunnels))
	}
	_, err := n.a.Apply(context.Background(), n.s)
	if got := ReasonOf(err); got != v1alpha1.ReasonSpanningTreeLimit {
		t.Errorf("reason %s (%v), want SpanningTreeLimit", got, err)
	}
	if len(n.ovs.Calls()) != 0 || n.cniExists() {
		t.Errorf("OVS calls %v, CNI config present %v; want neither", n.ovs.Methods(), n.cniExists())
	}
}

// TestApplierIsIdempotent: a second Apply on a node that matches changes nothing on the
// host, commits no OVS operation and writes no CNI config.
func TestApplierIsIdempotent(t *testing.T) {
	n := newFakeNode(t, defaultSpec(), threeNodes())
	ctx := context.Background()
	if _, err := n.a.Apply(ctx, n.s); err != nil {
		t.Fatal(err)
	}
	before, _ := n.host.Link("vobr0")
	r, err := n.a.Apply(ctx, n.s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Changed() || len(r.HostChanges) != 0 || r.OVSOps != 0 || r.CNIWritten {
		t.Errorf("second apply changed something: %+v", r)
	}
	if after, _ := n.host.Link("vobr0"); !reflect.DeepEqual(before, after) {
		t.Errorf("vobr0 %+v -> %+v", before, after)
	}
}

// TestApplierHandsTheVethToOVS: the OVS side is told the veth's current ifindex, and that
// the host made it anew (on the first pass, and after it vanished), so that the port is
// plugged in again; not on a pass that kept it.
func TestApplierHandsTheVethToOVS(t *testing.T) {
	n := newFakeNode(t, defaultSpec(), threeNodes())
	ctx := context.Background()
	applied := func() OVSState {
		t.Helper()
		n.ovs.ResetCalls()
		if _, err := n.a.Apply(ctx, n.s); err != nil {
			t.Fatal(err)
		}
		return n.ovs.Calls()[0].State
	}
	index := func() int { l, _ := n.host.Link("vobr0"); return l.Index }

	if s := applied(); !s.VethRecreated || s.VethIfindex != index() || s.VethIfindex == 0 {
		t.Errorf("first pass: recreated %v ifindex %d, want true %d", s.VethRecreated, s.VethIfindex, index())
	}
	if s := applied(); s.VethRecreated || s.VethIfindex != index() {
		t.Errorf("second pass: recreated %v ifindex %d, want false %d", s.VethRecreated, s.VethIfindex, index())
	}
	old := index()
	if _, err := n.host.Cleanup(hostnet.Names{Veth: "vobr0"}); err != nil { // someone deleted the veth
		t.Fatal(err)
	}
	s := applied()
	if !s.VethRecreated || s.VethIfindex != index() || s.VethIfindex == old {
		t.Errorf("after the veth vanished: recreated %v ifindex %d (was %d), want true %d", s.VethRecreated, s.VethIfindex, old, index())
	}
}

// cleanupNode is a node applied through the fakes, with a CNI bin dir where install-cni
// recorded the ovsmesh plugin.
func cleanupNode(t *testing.T) (*fakeNode, CleanupTarget, string) {
	t.Helper()
	n := newFakeNode(t, defaultSpec(), threeNodes())
	if _, err := n.a.Apply(context.Background(), n.s); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	plugin := filepath.Join(bin, "ovsmesh")
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RecordInstalledPlugins(bin, []string{"ovsmesh"}); err != nil {
		t.Fatal(err)
	}
	n.a.CNIBinDir = bin
	n.seq = nil
	n.host.ResetCalls()
	n.ovs.ResetCalls()
	return n, TargetForSpec(defaultSpec()), plugin
}

func fileExists(path string) bool { _, err := os.Lstat(path); return err == nil }

// TestCleanupOrder: the CNI config goes first (no new pod is wired to a data path that is
// going away), then the plugins it names, then the OVS bridge, then the host side.
func TestCleanupOrder(t *testing.T) {
	n, target, plugin := cleanupNode(t)
	var seen []string
	n.ovs.OnCall = func(m string) {
		seen = append(seen, fmt.Sprintf("ovs.%s cni=%v plugin=%v", m, n.cniExists(), fileExists(plugin)))
	}
	n.host.OnCall = func(m string) {
		_, bridge := n.ovs.Bridges["obr0"]
		seen = append(seen, fmt.Sprintf("host.%s cni=%v plugin=%v ovsbridge=%v", m, n.cniExists(), fileExists(plugin), bridge))
	}
	ch, err := n.a.Cleanup(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ovs.DeleteBridge cni=false plugin=false", "host.Cleanup cni=false plugin=false ovsbridge=false"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("calls:\n%q\nwant\n%q", seen, want)
	}
	if c := n.host.Calls(); len(c) != 1 || c[0].Arg != target.Host {
		t.Errorf("host calls %+v, want one Cleanup of %+v", c, target.Host)
	}
	if len(ch) < 4 || ch[0] != "removed "+CNIConfFile || ch[1] != "removed CNI plugin "+plugin || ch[2] != "deleted OVS bridge obr0" {
		t.Errorf("changes %q", ch)
	}
	for _, l := range []string{"kbr0", "vobr0", "vkbr0"} {
		if _, ok := n.host.Link(l); ok {
			t.Errorf("%s left", l)
		}
	}
	if ch, err := n.a.Cleanup(context.Background(), target); err != nil || len(ch) != 0 {
		t.Errorf("second cleanup: %q %v", ch, err)
	}
}

// TestCleanupTriesEveryStep: every step runs even when the ones before failed, and the
// error holds every failure.
func TestCleanupTriesEveryStep(t *testing.T) {
	n, target, plugin := cleanupNode(t)
	// A non-empty directory in place of the config and of the plugin: no one can remove
	// them, root included.
	for _, p := range []string{filepath.Join(n.a.CNIConfDir, CNIConfFile), plugin} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ovsErr, hostErr := errors.New("ovs refused"), errors.New("netlink refused")
	n.ovs.Fail["DeleteBridge"] = ovsErr
	n.host.Fail["Cleanup"] = hostErr
	_, err := n.a.Cleanup(context.Background(), target)
	if !errors.Is(err, ovsErr) || !errors.Is(err, hostErr) {
		t.Errorf("error %v does not hold the OVS and the host failures", err)
	}
	for _, s := range []string{"removing CNI config", "removing CNI plugin ovsmesh", "deleting OVS bridge obr0"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not say %q", err, s)
		}
	}
	if want := []string{"ovs.DeleteBridge +cni", "host.Cleanup +cni"}; !reflect.DeepEqual(n.seq, want) {
		t.Errorf("calls %q, want %q", n.seq, want)
	}
}

// TestCleanupWithoutOVS: with no OVS connection the host side is still cleaned, and the
// error says the bridge is left (OVSUnavailable), through the Applier and the Cleaner.
func TestCleanupWithoutOVS(t *testing.T) {
	t.Run("Applier", func(t *testing.T) {
		n, target, _ := cleanupNode(t)
		n.a.OVS = nil
		_, err := n.a.Cleanup(context.Background(), target)
		if got := ReasonOf(err); got != v1alpha1.ReasonOVSUnavailable {
			t.Errorf("reason %s (%v)", got, err)
		}
		if !reflect.DeepEqual(n.seq, []string{"host.Cleanup"}) || n.cniExists() {
			t.Errorf("calls %q, CNI config present %v", n.seq, n.cniExists())
		}
	})
	t.Run("Cleaner", func(t *testing.T) {
		n, target, _ := cleanupNode(t)
		n.ovs.Fail["Connect"] = ovs.ErrUnavailable
		c := Cleaner{Host: n.host, OVS: n.ovs, CNIConfDir: n.a.CNIConfDir, Log: testr.New(t)}
		_, err := c.Cleanup(context.Background(), target, false)
		if got := ReasonOf(err); got != v1alpha1.ReasonOVSUnavailable {
			t.Errorf("reason %s (%v)", got, err)
		}
		if !reflect.DeepEqual(n.seq, []string{"ovs.Connect +cni", "host.Cleanup"}) {
			t.Errorf("calls %q", n.seq)
		}
		if _, ok := n.ovs.Bridges["obr0"]; !ok {
			t.Error("the OVS bridge went without a connection?")
		}
	})
}
