package ovs

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/utils/ptr"
)

// TestBridgePortTunnelsOneTransaction: on an empty database, the bridge, the veth port and
// N tunnels are built into one list (the port and the tunnels join the new bridge by its
// uuid-name) and committed as one transaction; running the same builders again, on the
// committed state, appends nothing.
func TestBridgePortTunnelsOneTransaction(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	const n = 40
	spec := BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolRSTP, Priority: ptr.To(4096)}
	peers := SyntheticPeers(n, TunnelVXLAN)
	for i := range peers {
		peers[i].BFD, peers[i].Protected = i%2 == 0, i%3 == 0
	}

	build := func(t *testing.T) ([]ovsdb.Operation, SyncResult) {
		t.Helper()
		ops, err := c.EnsureBridgeOps(ctx, nil, spec)
		if err != nil {
			t.Fatalf("EnsureBridgeOps: %v", err)
		}
		if ops, err = c.EnsurePortOps(ctx, ops, "obr0", "vobr0", PortSystem); err != nil {
			t.Fatalf("EnsurePortOps: %v", err)
		}
		ops, res, err := c.SyncTunnelsOps(ctx, ops, "obr0", peers)
		if err != nil || res.Err() != nil {
			t.Fatalf("SyncTunnelsOps: %+v, %v, %v", res, err, res.Err())
		}
		return ops, res
	}

	ops, res := build(t)
	if res.Added != n || res.Updated != 0 || res.Deleted != 0 || res.Ops != 2*n+1 {
		t.Errorf("SyncTunnelsOps on the new bridge = %+v, want %d added in %d operations", res, n, 2*n+1)
	}
	// Bridge: 3 inserts + root mutation; port: 2 inserts + Bridge.ports mutation.
	if want := 4 + 3 + 2*n + 1; len(ops) != want {
		t.Errorf("%d operations, want %d", len(ops), want)
	}
	// Nothing is in the database before the one commit.
	if got := lines(srv.Vsctl("list-br")); len(got) != 0 {
		t.Fatalf("bridges before the commit: %v", got)
	}
	commit(t, c, ops, nil)

	got := lines(srv.Vsctl("list-ports", "obr0"))
	if len(got) != n+1 || !slices.Contains(got, "vobr0") {
		t.Fatalf("ports of obr0 after one transaction: %d (%v), want vobr0 and %d tunnels", len(got), got, n)
	}
	if v := get(t, srv, "Bridge", "obr0", "rstp_enable"); v != "true" {
		t.Errorf("rstp_enable = %s", v)
	}
	for i, p := range peers {
		name := PortName(p)
		if !slices.Contains(got, name) {
			t.Errorf("no port %s", name)
			continue
		}
		if i > 3 {
			continue // a few are enough for the columns
		}
		if v := get(t, srv, "Interface", name, "options:remote_ip"); v != p.RemoteIP {
			t.Errorf("%s remote_ip = %s, want %s", name, v, p.RemoteIP)
		}
		if v := get(t, srv, "Port", name, "protected"); v != fmt.Sprint(p.Protected) {
			t.Errorf("%s protected = %s, want %v", name, v, p.Protected)
		}
		if v := get(t, srv, "Port", name, "external_ids:"+TunnelPeerKey); v != p.PeerName {
			t.Errorf("%s peer = %s, want %s", name, v, p.PeerName)
		}
	}

	// Idempotent: the same builders on the committed state append nothing.
	if ops, res := build(t); len(ops) != 0 || res.Ops != 0 || res.Added+res.Updated+res.Deleted != 0 {
		t.Errorf("second run: %d operations (%+v), want none: %v", len(ops), res, describeAll(ops))
	}
}

// TestBuildersSeePendingRows: builders read the rows earlier operations of the same list
// insert, so running them twice on one uncommitted list appends nothing the second time,
// and a pending port or tunnel can be taken out again before the commit.
func TestBuildersSeePendingRows(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	peers := SyntheticPeers(3, TunnelGRE)
	ops, err := c.EnsureBridgeOps(ctx, nil, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	if err == nil {
		ops, err = c.EnsurePortOps(ctx, ops, "obr0", "vobr0", PortSystem)
	}
	if err != nil {
		t.Fatal(err)
	}
	ops, _, err = c.SyncTunnelsOps(ctx, ops, "obr0", peers)
	if err != nil {
		t.Fatal(err)
	}
	n := len(ops)
	// Again, on the same list: everything is there already.
	again, err := c.EnsureBridgeOps(ctx, ops, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	if err == nil {
		again, err = c.EnsurePortOps(ctx, again, "obr0", "vobr0", PortSystem)
	}
	if err != nil {
		t.Fatal(err)
	}
	again, res, err := c.SyncTunnelsOps(ctx, again, "obr0", peers)
	if err != nil || len(again) != n || res.Ops != 0 {
		t.Fatalf("builders run again on their own list appended %d operations (%+v, %v): %v",
			len(again)-n, res, err, describeAll(again[n:]))
	}
	// A pending port of that name on another (pending) bridge is taken.
	other, err := c.EnsureBridgeOps(ctx, ops, BridgeSpec{Name: "obr1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsurePortOps(ctx, other, "obr1", "vobr0", PortSystem); err == nil {
		t.Errorf("EnsurePortOps accepted vobr0 on obr1 while the list puts it on obr0")
	}
	// Take the veth port and one tunnel out again, then commit.
	ops, err = c.DeletePortOps(ctx, ops, "obr0", "vobr0")
	if err != nil {
		t.Fatal(err)
	}
	ops, res, err = c.SyncTunnelsOps(ctx, ops, "obr0", peers[1:])
	if err != nil || res.Deleted != 1 || res.Added != 0 {
		t.Fatalf("SyncTunnelsOps without peer 1 on the pending bridge = %+v, %v", res, err)
	}
	commit(t, c, ops, nil)
	got := lines(srv.Vsctl("list-ports", "obr0"))
	want := []string{PortName(peers[1]), PortName(peers[2])}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ports of obr0 = %v, want %v", got, want)
	}
	// As the agent recreates ports on a loop-prevention change: the veth port and every
	// tunnel of the committed bridge deleted in one transaction; then nothing is left to do.
	ops, err = c.EnsurePortOps(ctx, nil, "obr0", "vobr0", PortSystem)
	commit(t, c, ops, err)
	for range 2 {
		ops, err = c.DeletePortOps(ctx, nil, "obr0", "vobr0")
		if err == nil {
			ops, res, err = c.SyncTunnelsOps(ctx, ops, "obr0", nil)
		}
		commit(t, c, ops, err)
		if got := lines(srv.Vsctl("list-ports", "obr0")); len(got) != 0 {
			t.Fatalf("ports of obr0 after deleting the veth port and the mesh: %v", got)
		}
	}
	if len(ops) != 0 || res.Ops != 0 {
		t.Errorf("deleting again made %d operations: %v", len(ops), describeAll(ops))
	}
	// Unknown bridges are still errors, pending or not.
	if _, _, err := c.SyncTunnelsOps(ctx, nil, "obr9", peers); !errors.Is(err, ErrNoBridge) {
		t.Errorf("SyncTunnelsOps(no bridge) = %v, want ErrNoBridge", err)
	}
}

func describeAll(ops []ovsdb.Operation) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = describeOp(op)
	}
	return out
}
