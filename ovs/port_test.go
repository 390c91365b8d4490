package ovs

import (
	"errors"
	"slices"
	"testing"
)

func TestEnsureAndDeletePort(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	if _, err := c.EnsurePortOps(ctx, nil, "obr0", "vobr0", PortSystem); !errors.Is(err, ErrNoBridge) {
		t.Errorf("EnsurePortOps before the bridge exists: %v, want ErrNoBridge", err)
	}
	ensureBridge(t, c, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	srv.Vsctl("add-port", "obr0", "vethuser")
	srv.Vsctl("add-br", "br-user", "--", "add-port", "br-user", "taken0")
	waitCached(t, c, "vethuser", "taken0")

	ops, err := c.EnsurePortOps(ctx, nil, "obr0", "vobr0", "system")
	commit(t, c, ops, err)
	if len(ops) != 3 {
		t.Errorf("new port: %d ops, want 3", len(ops))
	}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, []string{"vethuser", "vobr0"}) {
		t.Errorf("ports = %v", got)
	}
	if got := get(t, srv, "Port", "vobr0", "external_ids:ovsmesh.io/owner"); got != "ovsmesh" {
		t.Errorf("vobr0 owner tag = %q", got)
	}
	if ops, err := c.EnsurePortOps(ctx, nil, "obr0", "vobr0", PortSystem); err != nil || len(ops) != 0 {
		t.Errorf("EnsurePortOps again: %d ops, %v", len(ops), err)
	}
	ops, err = c.EnsurePortOps(ctx, nil, "obr0", "vobr0", PortInternal)
	commit(t, c, ops, err)
	if len(ops) != 1 || get(t, srv, "Interface", "vobr0", "type") != "internal" {
		t.Errorf("type change: %d ops, type %q", len(ops), get(t, srv, "Interface", "vobr0", "type"))
	}

	// A user's port: accepted as it is, never changed or deleted.
	if ops, err := c.EnsurePortOps(ctx, nil, "obr0", "vethuser", PortSystem); err != nil || len(ops) != 0 {
		t.Errorf("EnsurePortOps on a matching user port: %d ops, %v; want 0, nil", len(ops), err)
	}
	if _, err := c.EnsurePortOps(ctx, nil, "obr0", "vethuser", PortInternal); !errors.Is(err, ErrNotOwned) {
		t.Errorf("EnsurePortOps changing a user port: %v, want ErrNotOwned", err)
	}
	if _, err := c.DeletePortOps(ctx, nil, "obr0", "vethuser"); !errors.Is(err, ErrNotOwned) {
		t.Errorf("DeletePortOps of a user port: %v, want ErrNotOwned", err)
	}
	if _, err := c.EnsurePortOps(ctx, nil, "obr0", "taken0", PortSystem); err == nil {
		t.Errorf("EnsurePortOps with a name used on another bridge: no error")
	}
	if _, err := c.EnsurePortOps(ctx, nil, "obr0", "vxlan-0a000001", "vxlan"); err == nil {
		t.Errorf("EnsurePortOps with type vxlan: no error")
	}

	ops, err = c.DeletePortOps(ctx, nil, "obr0", "vobr0")
	commit(t, c, ops, err)
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, []string{"vethuser"}) {
		t.Errorf("ports after delete = %v", got)
	}
	if _, err := srv.VsctlErr("get", "Interface", "vobr0", "name"); err == nil {
		t.Errorf("interface vobr0 not garbage-collected")
	}
	if ops, err := c.DeletePortOps(ctx, nil, "obr0", "vobr0"); err != nil || len(ops) != 0 {
		t.Errorf("DeletePortOps again: %d ops, %v", len(ops), err)
	}
	if ops, err := c.DeletePortOps(ctx, nil, "nosuch", "vobr0"); err != nil || len(ops) != 0 {
		t.Errorf("DeletePortOps on a missing bridge: %d ops, %v", len(ops), err)
	}
}

// TestBridgeThenPortsBatch: builders append to one list that commits as one transaction
// (their uuid-names never clash): two bridges, then a port on each.
func TestBridgeThenPortsBatch(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	ops, err := c.EnsureBridgeOps(ctx, nil, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	if err != nil {
		t.Fatal(err)
	}
	ops, err = c.EnsureBridgeOps(ctx, ops, BridgeSpec{Name: "obr1", Protocol: ProtocolRSTP})
	commit(t, c, ops, err)
	if got := lines(srv.Vsctl("list-br")); !slices.Equal(got, []string{"obr0", "obr1"}) {
		t.Errorf("list-br = %v", got)
	}
	ops, err = c.EnsurePortOps(ctx, nil, "obr0", "vobr0", PortSystem)
	if err != nil {
		t.Fatal(err)
	}
	ops, err = c.EnsurePortOps(ctx, ops, "obr1", "vobr1", PortInternal)
	commit(t, c, ops, err)
	if got := portsOf(t, srv, "obr1"); !slices.Equal(got, []string{"vobr1"}) {
		t.Errorf("ports of obr1 = %v", got)
	}
}
