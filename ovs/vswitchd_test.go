package ovs

import (
	"k8s.io/utils/ptr"

	"strconv"
	"strings"
	"testing"
	"time"
)

// appctlStates parses `ovs-appctl stp/show` or `rstp/show` for one bridge into STP port
// number -> state, from the table lines "  <port> <role> <state> <cost> <pri>.<nbr>".
// Port names there are cut to 10 characters, so rows are matched by port number, which
// ovs-vswitchd also writes into the Port's status:stp_port_id / rstp_status:rstp_port_id.
func appctlStates(out string) map[string]string {
	states := map[string]string{}
	inTable := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "Interface":
			inTable = true
		case inTable && len(f) == 5 && strings.Contains(f[4], "."):
			states[f[4][strings.Index(f[4], ".")+1:]] = f[2]
		}
	}
	return states
}

// portNumber extracts the port number from a port id: STP's status:stp_port_id is
// decimal with an 8-bit number ("32769" = 128.1), RSTP's rstp_port_id hex with a 12-bit
// one ("8002" = 128.2).
func portNumber(t *testing.T, id string, base int, mask uint64) string {
	t.Helper()
	v, err := strconv.ParseUint(id, base, 16)
	if err != nil {
		t.Fatalf("port id %q: %v", id, err)
	}
	return strconv.FormatUint(v&mask, 10)
}

// TestPortStatesWithVswitchd runs ovs-vswitchd (userspace datapath, in a network namespace
// of its own with no routes, so tunnel packets go nowhere) and reads the STP, RSTP and BFD
// states ovs-vswitchd writes into the status columns once tunnels exist, cross-checked
// with ovs-appctl stp/show and rstp/show.
func TestPortStatesWithVswitchd(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	sw := srv.StartSwitch(t)

	ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP,
		HelloTime: 1, MaxAge: 6, ForwardDelay: 4})
	peers := []TunnelSpec{
		{PeerName: "node2", RemoteIP: "192.0.2.2", Type: "vxlan", Key: key(42), DstPort: 4789, BFD: true},
		{PeerName: "node3", RemoteIP: "192.0.2.3", Type: "vxlan", Key: key(42), DstPort: 4789},
	}
	start := time.Now()
	if res := mustSync(t, c, "obr0", peers); res.Added != 2 {
		t.Fatalf("sync = %+v", res)
	}

	// Listening -> learning -> forwarding takes 2 x forward delay (8 s); ovs-vswitchd
	// refreshes status columns every 5 s.
	var states []PortState
	waitFor(t, 40*time.Second, "STP forwarding on both tunnels in the Port status column", func() bool {
		var err error
		states, err = c.PortStates(ctx, "obr0")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range states {
			if s.Peer != "" && s.STPState == "forwarding" && s.Forwarding() {
				n++
			}
		}
		return n == 2
	})
	t.Logf("STP forwarding after %v: %+v", time.Since(start).Round(time.Millisecond), states)
	stpOut := sw.Appctl("stp/show", "obr0")
	stp := appctlStates(stpOut)
	for _, s := range states {
		if s.Peer == "" {
			continue
		}
		num := portNumber(t, get(t, srv, "Port", s.Name, "status:stp_port_id"), 10, 0xff)
		if stp[num] != s.STPState {
			t.Errorf("%s (STP port %s): PortStates says %q, ovs-appctl stp/show says %q:\n%s", s.Name, num, s.STPState, stp[num], stpOut)
		}
		if s.STPRole != "designated" {
			t.Errorf("%s: STP role %q, want designated (the lone bridge is root)", s.Name, s.STPRole)
		}
		if s.InterfaceType != "vxlan" || s.RemoteIP == "" || s.Error != "" {
			t.Errorf("%s: interface %+v", s.Name, s)
		}
	}
	// BFD: enabled on node2's tunnel only; with no peer answering it is down.
	waitFor(t, 20*time.Second, "bfd_status:state on vxlan-c0000202", func() bool {
		states, _ = c.PortStates(ctx, "obr0")
		for _, s := range states {
			if s.Name == "vxlan-c0000202" {
				return s.BFDState != ""
			}
		}
		return false
	})
	for _, s := range states {
		switch s.Name {
		case "vxlan-c0000202":
			if s.BFDState != "down" || s.BFDForwarding {
				t.Errorf("%s: BFD %q forwarding=%v, want down/false", s.Name, s.BFDState, s.BFDForwarding)
			}
		case "vxlan-c0000203":
			if s.BFDState != "" {
				t.Errorf("%s: BFD state %q without BFD", s.Name, s.BFDState)
			}
		}
	}

	if show := srv.Vsctl("show"); !strings.Contains(show, "bfd_status: {") {
		t.Errorf("ovs-vsctl show with ovs-vswitchd running has no bfd_status line (doc.go says so):\n%s", show)
	}
	// RSTP: switch the live bridge; rstp_status follows. RSTP, unlike OVS's STP, honours
	// BFD: the tunnel whose peer does not answer BFD is taken out (role Disabled).
	ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolRSTP,
		Priority: ptr.To(4096), MaxAge: 6, ForwardDelay: 4})
	want := map[string][2]string{"vxlan-c0000202": {"Discarding", "Disabled"}, "vxlan-c0000203": {"Forwarding", "Designated"}}
	waitFor(t, 40*time.Second, "RSTP states in rstp_status", func() bool {
		states, _ = c.PortStates(ctx, "obr0")
		n := 0
		for _, s := range states {
			if w, ok := want[s.Name]; ok && s.RSTPState == w[0] && s.RSTPRole == w[1] && s.STPState == "" {
				n++
			}
		}
		return n == 2
	})
	rstpOut := sw.Appctl("rstp/show", "obr0")
	rstp := appctlStates(rstpOut)
	for _, s := range states {
		if s.Peer == "" {
			continue
		}
		num := portNumber(t, get(t, srv, "Port", s.Name, "rstp_status:rstp_port_id"), 16, 0xfff)
		if rstp[num] != s.RSTPState {
			t.Errorf("%s (RSTP port %s): PortStates says %q, ovs-appctl rstp/show says %q:\n%s", s.Name, num, s.RSTPState, rstp[num], rstpOut)
		}
		if s.Forwarding() != (s.Name == "vxlan-c0000203") {
			t.Errorf("%s: Forwarding() = %v with RSTP %s", s.Name, s.Forwarding(), s.RSTPState)
		}
	}
}

// TestSplitHorizonPorts: tunnels made protected are protected in OVSDB from their first
// transaction, ovs-vswitchd sets them up (Live), protection flips in place (one update per
// port, no port replaced), LoopPrevention reads the bridge's mode, and FlushFDB reaches
// ovs-vswitchd.
func TestSplitHorizonPorts(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	sw := srv.StartSwitch(t)

	if proto, exists, err := c.LoopPrevention(ctx, "obr0"); err != nil || exists || proto != "" {
		t.Errorf("LoopPrevention before the bridge = %q %v %v", proto, exists, err)
	}
	ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP})
	if proto, exists, err := c.LoopPrevention(ctx, "obr0"); err != nil || !exists || proto != ProtocolSTP {
		t.Errorf("LoopPrevention of an STP bridge = %q %v %v", proto, exists, err)
	}
	ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev})
	if proto, exists, err := c.LoopPrevention(ctx, "obr0"); err != nil || !exists || proto != "" {
		t.Errorf("LoopPrevention with the tree off = %q %v %v", proto, exists, err)
	}
	peers := threePeers("vxlan")
	for i := range peers {
		peers[i].Protected = true
	}
	if res := mustSync(t, c, "obr0", peers); res.Added != 3 || res.Ops != 7 {
		t.Fatalf("protected sync = %+v, want 3 ports added in 7 ops (protection is a column of the new port)", res)
	}
	for _, p := range peers {
		if got := get(t, srv, "Port", PortName(p), "protected"); got != "true" {
			t.Errorf("%s protected = %s", PortName(p), got)
		}
	}
	var states []PortState
	waitFor(t, 20*time.Second, "ovs-vswitchd sets the three tunnels up", func() bool {
		var err error
		if states, err = c.PortStates(ctx, "obr0"); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range states {
			if s.Peer != "" && s.Live && s.Protected && s.STPState == "" && s.RSTPState == "" {
				n++
			}
		}
		return n == 3
	})
	// The bridge's local port is a device ovs-vswitchd made: it reports its kernel ifindex.
	waitFor(t, 20*time.Second, "ifindex of obr0's local interface", func() bool {
		idx, err := c.InterfaceIfindex(ctx, "obr0")
		return err == nil && idx > 0 && strconv.Itoa(idx) == get(t, srv, "Interface", "obr0", "ifindex")
	})
	if idx, err := c.InterfaceIfindex(ctx, "nosuch0"); err != nil || idx != 0 {
		t.Errorf("InterfaceIfindex of a missing interface = %d, %v", idx, err)
	}
	uuids := srv.Vsctl("--bare", "--columns=_uuid", "list", "Port")
	if res := mustSync(t, c, "obr0", threePeers("vxlan")); res.Updated != 3 || res.Added+res.Deleted != 0 || res.Ops != 3 {
		t.Errorf("unprotect = %+v, want 3 updates in 3 ops", res)
	}
	if got := srv.Vsctl("--bare", "--columns=_uuid", "list", "Port"); got != uuids {
		t.Errorf("ports were replaced, not updated:\n%s\n%s", uuids, got)
	}
	if got := get(t, srv, "Port", "vxlan-ac1e0002", "protected"); got != "false" {
		t.Errorf("after unprotect: protected = %s", got)
	}
	if err := FlushFDB(ctx, sw.Ctl, "obr0"); err != nil {
		t.Errorf("FlushFDB: %v", err)
	}
	if err := FlushFDB(ctx, sw.Ctl, "nosuchbr"); err == nil || !strings.Contains(err.Error(), "fdb/flush") {
		t.Errorf("FlushFDB of a missing bridge: %v, want ovs-vswitchd's error", err)
	}
}
