package ovs

import (
	"slices"
	"testing"
)

// TestSyncTunnelsReplacesOddOwnedPort: a port tagged as an ovsmesh tunnel that does not
// have the one interface ovsmesh gives its tunnels (here, a bond of two) is replaced by a
// proper tunnel port of the same name, in one transaction, without a panic.
func TestSyncTunnelsReplacesOddOwnedPort(t *testing.T) {
	srv, c := startDB(t)
	ensureBridge(t, c, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	srv.Vsctl("add-bond", "obr0", "vxlan-ac1e0002", "ifa", "ifb", "--", "set", "Port", "vxlan-ac1e0002",
		"external_ids:ovsmesh.io/owner=ovsmesh", "external_ids:ovsmesh.io/tunnel-peer=node2")
	// The sync must see the odd port: wait for the monitor to bring it into the cache (a sync
	// on a cache without it would try to create the name anew and be refused).
	waitCached(t, c, "vxlan-ac1e0002")
	peers := threePeers("vxlan")[:1]
	res := mustSync(t, c, "obr0", peers)
	if res.Added != 1 || res.Deleted != 1 {
		t.Errorf("sync = %+v, want the odd port replaced (1 deleted, 1 added)", res)
	}
	got := lines(srv.Vsctl("--bare", "--columns=name", "list", "Interface"))
	slices.Sort(got)
	if !slices.Equal(got, []string{"obr0", "vxlan-ac1e0002"}) {
		t.Errorf("interfaces = %v, want obr0 and vxlan-ac1e0002 (bond members garbage-collected)", got)
	}
	if got := get(t, srv, "Interface", "vxlan-ac1e0002", "type"); got != "vxlan" {
		t.Errorf("type = %q", got)
	}
	if res := mustSync(t, c, "obr0", peers); res.Ops != 0 {
		t.Errorf("second sync = %+v, want 0 ops", res)
	}
}
