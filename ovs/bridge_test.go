package ovs

import (
	"k8s.io/utils/ptr"

	"errors"
	"strings"
	"testing"
	"time"
)

func TestEnsureBridgeSTPThenRSTP(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	srv.Vsctl("set", "Open_vSwitch", ".", "external_ids:system-id=node1")

	stp := BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP,
		Priority: ptr.To(32769), HelloTime: 1, MaxAge: 6, ForwardDelay: 4, FailMode: "standalone"}
	ops, err := c.EnsureBridgeOps(ctx, nil, stp)
	commit(t, c, ops, err)
	if len(ops) != 4 {
		t.Errorf("creating a bridge: %d operations, want 4 (interface, port, bridge, Open_vSwitch mutate)", len(ops))
	}
	// Checked through ovs-vsctl, as a user would.
	for col, want := range map[string]string{
		"datapath_type": "netdev", "stp_enable": "true", "rstp_enable": "false", "fail_mode": "standalone",
		"other_config:stp-priority": "32769", "other_config:stp-hello-time": "1",
		"other_config:stp-max-age": "6", "other_config:stp-forward-delay": "4",
		"external_ids:ovsmesh.io/owner": "ovsmesh",
	} {
		if got := get(t, srv, "Bridge", "obr0", col); got != want {
			t.Errorf("STP bridge %s = %q, want %q", col, got, want)
		}
	}
	if got := strings.TrimSpace(srv.Vsctl("list-ports", "obr0")); got != "" {
		t.Errorf("list-ports obr0 = %q, want none besides the local port", got)
	}
	if got := get(t, srv, "Interface", "obr0", "type"); got != "internal" {
		t.Errorf("local interface type %q, want internal", got)
	}
	if got := strings.TrimSpace(srv.Vsctl("list-br")); got != "obr0" {
		t.Errorf("list-br = %q", got)
	}

	// Idempotent.
	if ops, err := c.EnsureBridgeOps(ctx, nil, stp); err != nil || len(ops) != 0 {
		t.Fatalf("second EnsureBridgeOps: %d ops, err %v; want 0, nil", len(ops), err)
	}

	// A user's own other_config key survives the switch to RSTP.
	srv.Vsctl("set", "Bridge", "obr0", `other_config:hwaddr="02:00:00:00:01:01"`)
	rstp := BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: "rstp",
		Priority: ptr.To(4096 * 8), HelloTime: 2, MaxAge: 10, ForwardDelay: 5, FailMode: "standalone"}
	ops, err = c.EnsureBridgeOps(ctx, nil, rstp)
	commit(t, c, ops, err)
	if len(ops) != 2 {
		t.Errorf("STP to RSTP: %d operations, want 2 (update enables, mutate other_config)", len(ops))
	}
	for col, want := range map[string]string{
		"stp_enable": "false", "rstp_enable": "true",
		"other_config:rstp-priority": "32768", "other_config:rstp-max-age": "10",
		"other_config:rstp-forward-delay": "5", "other_config:hwaddr": "02:00:00:00:01:01",
	} {
		if got := get(t, srv, "Bridge", "obr0", col); got != want {
			t.Errorf("RSTP bridge %s = %q, want %q", col, got, want)
		}
	}
	oc := get(t, srv, "Bridge", "obr0", "other_config")
	for _, k := range []string{"stp-priority", "stp-hello-time", "stp-max-age", "stp-forward-delay", "rstp-hello-time"} {
		if _, err := srv.VsctlErr("get", "Bridge", "obr0", "other_config:"+k); err == nil {
			t.Errorf("other_config:%s still set after switching to RSTP: %s", k, oc)
		}
	}
	if ops, err := c.EnsureBridgeOps(ctx, nil, rstp); err != nil || len(ops) != 0 {
		t.Fatalf("second RSTP EnsureBridgeOps: %d ops, err %v; want 0, nil", len(ops), err)
	}

	// Timer change only: one mutation.
	rstp.ForwardDelay = 6
	ops, err = c.EnsureBridgeOps(ctx, nil, rstp)
	commit(t, c, ops, err)
	if len(ops) != 1 || get(t, srv, "Bridge", "obr0", "other_config:rstp-forward-delay") != "6" {
		t.Errorf("forward delay change: %d ops, value %q", len(ops), get(t, srv, "Bridge", "obr0", "other_config:rstp-forward-delay"))
	}

	// A bridge ovsmesh does not own is refused, and left as it was.
	srv.Vsctl("add-br", "br-user", "--", "set", "Bridge", "br-user", "stp_enable=false")
	waitCached(t, c, "br-user") // the bridge row comes in the same monitor update as its port
	_, err = c.EnsureBridgeOps(ctx, nil, BridgeSpec{Name: "br-user", Protocol: ProtocolSTP})
	if !errors.Is(err, ErrNotOwned) {
		t.Errorf("EnsureBridgeOps on a user's bridge: err %v, want ErrNotOwned", err)
	}
	if ops, err := c.DeleteBridgeOps(ctx, nil, "br-user"); !errors.Is(err, ErrNotOwned) || len(ops) != 0 {
		t.Errorf("DeleteBridgeOps on a user's bridge: %d ops, err %v; want ErrNotOwned", len(ops), err)
	}

	// Uninstall: delete obr0, its ports and interfaces; br-user stays.
	ops, err = c.DeleteBridgeOps(ctx, nil, "obr0")
	commit(t, c, ops, err)
	if got := strings.TrimSpace(srv.Vsctl("list-br")); got != "br-user" {
		t.Errorf("after DeleteBridgeOps list-br = %q, want br-user", got)
	}
	if got := srv.Vsctl("--bare", "--columns=name", "find", "Interface", "name=obr0"); strings.TrimSpace(got) != "" {
		t.Errorf("interface obr0 not garbage-collected: %q", got)
	}
	if ops, err := c.DeleteBridgeOps(ctx, nil, "obr0"); err != nil || len(ops) != 0 {
		t.Errorf("DeleteBridgeOps again: %d ops, err %v; want 0, nil", len(ops), err)
	}
}

func TestBridgeSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		spec BridgeSpec
		ok   bool
	}{
		{BridgeSpec{Name: "obr0", Protocol: "STP"}, true},
		{BridgeSpec{Name: "obr0", Protocol: "RSTP", Priority: ptr.To(4096)}, true},
		{BridgeSpec{Name: "obr0", Protocol: "RSTP", Priority: ptr.To(4097)}, false},
		{BridgeSpec{Name: "obr0", Protocol: "STP", Priority: ptr.To(4097)}, true},
		{BridgeSpec{Name: "obr0", Protocol: "STP", MaxAge: 5}, false},
		{BridgeSpec{Name: "obr0", Protocol: "STP", HelloTime: 11}, false},
		{BridgeSpec{Name: "obr0", Protocol: "STP", ForwardDelay: 31}, false},
		{BridgeSpec{Name: "obr0", Protocol: "MSTP"}, false},
		{BridgeSpec{Name: "obr0", DatapathType: "dpdk"}, false},
		{BridgeSpec{Name: "obr0", FailMode: "open"}, false},
		{BridgeSpec{Name: "a-name-longer-than-15"}, false},
		{BridgeSpec{Name: ""}, false},
	} {
		if err := tc.spec.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tc.spec, err, tc.ok)
		}
	}
}

// TestEnsureBridgeUninitialisedDB: with no Open_vSwitch row (a database nobody ran
// `ovs-vsctl init` on), EnsureBridgeOps creates it, as ovs-vsctl add-br does.
func TestEnsureBridgeUninitialisedDB(t *testing.T) {
	srv, c := startDB(t)
	srv.Vsctl("destroy", "Open_vSwitch", ".")
	waitFor(t, 5*time.Second, "the root row to leave the cache", func() bool {
		r, err := c.rootRow(testCtx(t))
		return err == nil && r == nil
	})
	ensureBridge(t, c, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	if got := strings.TrimSpace(srv.Vsctl("list-br")); got != "obr0" {
		t.Errorf("list-br = %q, want obr0", got)
	}
	if n := len(lines(srv.Vsctl("--bare", "--columns=_uuid", "list", "Open_vSwitch"))); n != 1 {
		t.Errorf("%d Open_vSwitch rows, want 1", n)
	}
}

// TestBridgePriorityZero: priority 0 (the most preferred root) is written as 0, not taken for
// "unset"; nil leaves the key out (OVS's default, 32768).
func TestBridgePriorityZero(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	ops, err := c.EnsureBridgeOps(ctx, nil, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP, Priority: ptr.To(0)})
	commit(t, c, ops, err)
	if got := get(t, srv, "Bridge", "obr0", "other_config:stp-priority"); got != "0" {
		t.Errorf("stp-priority = %q, want 0", got)
	}
	ops, err = c.EnsureBridgeOps(ctx, nil, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP})
	commit(t, c, ops, err)
	if got := srv.Vsctl("get", "Bridge", "obr0", "other_config"); strings.Contains(got, "stp-priority") {
		t.Errorf("nil priority left other_config %s", got)
	}
	if err := (BridgeSpec{Name: "obr0", Protocol: ProtocolRSTP, Priority: ptr.To(65536)}).Validate(); err == nil {
		t.Error("priority 65536 accepted")
	}
}
