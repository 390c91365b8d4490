package ovs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovsmesh/ovsmesh/ovs/internal/ovstest"
)

// foreignSnapshot records, through ovs-vsctl, every column of the rows a user made, so a
// test can assert that ovsmesh left them exactly as they were.
func foreignSnapshot(t *testing.T, srv *ovstest.Server) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(srv.Vsctl("list", "Bridge", "br-user"))
	for _, p := range []string{"user0", "vethuser", "gre-user"} {
		b.WriteString(srv.Vsctl("list", "Port", p))
		b.WriteString(srv.Vsctl("list", "Interface", p))
	}
	return b.String()
}

func threePeers(typ string) []TunnelSpec {
	var out []TunnelSpec
	for n := 2; n <= 4; n++ {
		out = append(out, TunnelSpec{PeerName: fmt.Sprintf("node%d", n), RemoteIP: fmt.Sprintf("172.30.0.%d", n),
			Type: typ, Key: key(42), DstPort: 4789})
	}
	return out
}

// portsOf lists a bridge's ports through ovs-vsctl.
func portsOf(t *testing.T, srv *ovstest.Server, br string) []string {
	return lines(srv.Vsctl("list-ports", br))
}

func TestSyncTunnels(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP})

	// A user's bridge with a port, and a user's ports on obr0 (one of them a GRE tunnel
	// that looks like ovsmesh's).
	srv.Vsctl("add-br", "br-user", "--", "add-port", "br-user", "user0", "--", "set", "Interface", "user0", "type=internal")
	srv.Vsctl("add-port", "obr0", "vethuser")
	srv.Vsctl("add-port", "obr0", "gre-user", "--", "set", "Interface", "gre-user", "type=gre", "options:remote_ip=172.30.0.9")
	waitCached(t, c, "user0", "vethuser", "gre-user")
	before := foreignSnapshot(t, srv)

	// Three peers over GRE.
	res := mustSync(t, c, "obr0", threePeers("GRE"))
	if res.Added != 3 || res.Updated != 0 || res.Deleted != 0 || res.Ops != 7 {
		t.Errorf("first sync = %+v, want 3 added in 7 ops (3 interfaces, 3 ports, 1 bridge mutation)", res)
	}
	want := []string{"gre-ac1e0002", "gre-ac1e0003", "gre-ac1e0004", "gre-user", "vethuser"}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, want) {
		t.Errorf("ports of obr0 = %v, want %v", got, want)
	}
	if got := get(t, srv, "Interface", "gre-ac1e0003", "options"); got != `{key="42", remote_ip="172.30.0.3"}` {
		t.Errorf("gre-ac1e0003 options = %s (GRE has no dst_port)", got)
	}
	if got := get(t, srv, "Interface", "gre-ac1e0003", "type"); got != "gre" {
		t.Errorf("gre-ac1e0003 type = %s", got)
	}
	if got := get(t, srv, "Port", "gre-ac1e0003", "external_ids"); got != `{"ovsmesh.io/owner"=ovsmesh, "ovsmesh.io/tunnel-peer"=node3}` {
		t.Errorf("gre-ac1e0003 external_ids = %s", got)
	}

	// Idempotent: nothing to send.
	if res := mustSync(t, c, "obr0", threePeers("GRE")); res.Ops != 0 || res.Added+res.Updated+res.Deleted != 0 {
		t.Errorf("second sync = %+v, want zero operations", res)
	}

	// GRE to VXLAN: every port replaced in one transaction.
	res = mustSync(t, c, "obr0", threePeers("vxlan"))
	if res.Added != 3 || res.Deleted != 3 || res.Updated != 0 || res.Ops != 7 {
		t.Errorf("gre->vxlan sync = %+v, want 3 added, 3 deleted in 7 ops", res)
	}
	want = []string{"gre-user", "vethuser", "vxlan-ac1e0002", "vxlan-ac1e0003", "vxlan-ac1e0004"}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, want) {
		t.Errorf("ports of obr0 = %v, want %v", got, want)
	}
	if got := get(t, srv, "Interface", "vxlan-ac1e0002", "options"); got != `{dst_port="4789", key="42", remote_ip="172.30.0.2"}` {
		t.Errorf("vxlan-ac1e0002 options = %s", got)
	}
	if got := lines(srv.Vsctl("--bare", "--columns=name", "find", "Interface", "type=gre")); !slices.Equal(got, []string{"gre-user"}) {
		t.Errorf("GRE interfaces left = %v, want only the user's (old ones garbage-collected)", got)
	}
	if res := mustSync(t, c, "obr0", threePeers("vxlan")); res.Ops != 0 {
		t.Errorf("sync after type change again = %+v, want 0 ops", res)
	}

	// A peer removed.
	peers := threePeers("vxlan")[:2]
	res = mustSync(t, c, "obr0", peers)
	if res.Deleted != 1 || res.Added != 0 || res.Ops != 1 {
		t.Errorf("peer removal = %+v, want 1 deleted in 1 op", res)
	}
	want = []string{"gre-user", "vethuser", "vxlan-ac1e0002", "vxlan-ac1e0003"}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, want) {
		t.Errorf("ports of obr0 = %v, want %v", got, want)
	}

	// Updates in place: a new key for all, BFD on one, a renamed peer.
	for i := range peers {
		peers[i].Key = key(7)
	}
	peers[0].BFD = true
	peers[1].PeerName = "node3-renamed"
	res = mustSync(t, c, "obr0", peers)
	if res.Updated != 2 || res.Added != 0 || res.Deleted != 0 || res.Ops != 4 {
		t.Errorf("update sync = %+v, want 2 updated in 4 ops (2 interface updates, 2 peer-tag mutations)", res)
	}
	if got := get(t, srv, "Interface", "vxlan-ac1e0002", "bfd"); got != `{enable="true"}` {
		t.Errorf("bfd = %s", got)
	}
	if got := get(t, srv, "Interface", "vxlan-ac1e0003", "options:key"); got != "7" {
		t.Errorf("key = %s", got)
	}
	if got := get(t, srv, "Port", "vxlan-ac1e0003", "external_ids:ovsmesh.io/tunnel-peer"); got != "node3-renamed" {
		t.Errorf("peer tag = %s", got)
	}
	if res := mustSync(t, c, "obr0", peers); res.Ops != 0 {
		t.Errorf("sync after updates again = %+v, want 0 ops", res)
	}

	// A desired name held by a user's port: left out and reported; the rest committed.
	srv.Vsctl("add-port", "br-user", "vxlan-ac1e0063", "--", "set", "Interface", "vxlan-ac1e0063", "type=vxlan", "options:remote_ip=1.2.3.4")
	waitCached(t, c, "vxlan-ac1e0063")
	conflicting := append(slices.Clone(peers),
		TunnelSpec{PeerName: "node99", RemoteIP: "172.30.0.99", Type: "vxlan"},
		TunnelSpec{PeerName: "node5", RemoteIP: "172.30.0.5", Type: "vxlan"})
	res, err := c.SyncTunnels(ctx, "obr0", conflicting)
	if !errors.Is(err, ErrNotOwned) || !slices.Equal(res.Conflicts, []string{"vxlan-ac1e0063"}) || res.Added != 1 {
		t.Errorf("conflicting sync = %+v, %v; want vxlan-ac1e0063 in conflict, node5 added, ErrNotOwned", res, err)
	}
	if got := get(t, srv, "Interface", "vxlan-ac1e0063", "options:remote_ip"); got != "1.2.3.4" {
		t.Errorf("user's port vxlan-ac1e0063 changed: remote_ip %s", got)
	}
	srv.Vsctl("del-port", "br-user", "vxlan-ac1e0063")

	// Ownership listing.
	owned, err := c.OwnedPorts(ctx, "obr0")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range owned {
		names = append(names, p.Name+"/"+p.Peer+"/"+p.InterfaceType)
	}
	wantOwned := []string{"obr0//internal", "vxlan-ac1e0002/node2/vxlan", "vxlan-ac1e0003/node3-renamed/vxlan", "vxlan-ac1e0005/node5/vxlan"}
	if !slices.Equal(names, wantOwned) {
		t.Errorf("OwnedPorts = %v, want %v", names, wantOwned)
	}

	// Down to no tunnels: only ovsmesh's tunnels go.
	res = mustSync(t, c, "obr0", nil)
	if res.Deleted != 3 || res.Ops != 1 {
		t.Errorf("sync to empty = %+v, want 3 deleted in 1 op", res)
	}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, []string{"gre-user", "vethuser"}) {
		t.Errorf("ports of obr0 = %v, want only the user's", got)
	}
	if after := foreignSnapshot(t, srv); after != before {
		t.Errorf("user's rows changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := portsOf(t, srv, "br-user"); !slices.Equal(got, []string{"user0"}) {
		t.Errorf("ports of br-user = %v", got)
	}

	// Refusals: unknown bridge, a user's bridge, a bad spec.
	if _, err := c.SyncTunnels(ctx, "nosuch", threePeers("gre")); !errors.Is(err, ErrNoBridge) {
		t.Errorf("sync on a missing bridge: %v, want ErrNoBridge", err)
	}
	if _, err := c.SyncTunnels(ctx, "br-user", threePeers("gre")); !errors.Is(err, ErrNotOwned) {
		t.Errorf("sync on a user's bridge: %v, want ErrNotOwned", err)
	}
	if _, err := c.SyncTunnels(ctx, "obr0", []TunnelSpec{{PeerName: "x", RemoteIP: "172.30.0.2", Type: "geneve"}}); err == nil {
		t.Errorf("sync with type geneve: no error")
	}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, []string{"gre-user", "vethuser"}) {
		t.Errorf("a refused sync changed obr0: %v", got)
	}
}

// TestSyncTunnels1000 commits 1,000 peers in one transaction and removes them in one.
func TestSyncTunnels1000(t *testing.T) {
	srv, c := startDB(t)
	ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolRSTP})
	peers := SyntheticPeers(1000, "vxlan")

	start := time.Now()
	res := mustSync(t, c, "obr0", peers)
	took := time.Since(start)
	t.Logf("1,000 peers: %+v in %v", res, took)
	if res.Added != 1000 || res.Ops != 2001 {
		t.Errorf("sync of 1,000 peers = %+v, want 1000 added in 2001 ops (one transaction)", res)
	}
	if n := len(portsOf(t, srv, "obr0")); n != 1000 {
		t.Errorf("ovs-vsctl list-ports obr0: %d ports, want 1000", n)
	}
	if n := len(lines(srv.Vsctl("--bare", "--columns=name", "find", "Interface", "type=vxlan"))); n != 1000 {
		t.Errorf("ovs-vsctl find Interface type=vxlan: %d, want 1000", n)
	}
	start = time.Now()
	if res := mustSync(t, c, "obr0", peers); res.Ops != 0 {
		t.Errorf("second sync of 1,000 peers = %+v, want 0 ops", res)
	}
	t.Logf("1,000 peers, nothing to do: %v", time.Since(start))
	res = mustSync(t, c, "obr0", nil)
	if res.Deleted != 1000 || res.Ops != 1 {
		t.Errorf("removing 1,000 peers = %+v, want 1000 deleted in 1 op", res)
	}
	if n := len(portsOf(t, srv, "obr0")); n != 0 {
		t.Errorf("ovs-vsctl list-ports obr0 after removal: %d ports", n)
	}
}

// BenchmarkSyncTunnels1000 measures one full-mesh sync of 1,000 new peers (a fresh node
// joining a large cluster) followed by their removal, each one transaction.
func BenchmarkSyncTunnels1000(b *testing.B) {
	srv := ovstest.StartServer(b)
	c, err := Dial(b.Context(), Options{Socket: srv.Sock})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ops, err := c.EnsureBridgeOps(b.Context(), nil, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP})
	if err == nil {
		err = c.Transact(b.Context(), ops...)
	}
	if err != nil {
		b.Fatal(err)
	}
	peers := SyntheticPeers(1000, "vxlan")
	b.ResetTimer()
	for range b.N {
		if res, err := c.SyncTunnels(b.Context(), "obr0", peers); err != nil || res.Added != 1000 {
			b.Fatalf("add: %+v %v", res, err)
		}
		if res, err := c.SyncTunnels(b.Context(), "obr0", nil); err != nil || res.Deleted != 1000 {
			b.Fatalf("remove: %+v %v", res, err)
		}
	}
}
