package hostnet

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func testState() State {
	return State{
		Bridge:     Bridge{Name: "kbr0", Address: netip.MustParsePrefix("10.244.1.1/24"), MTU: 1450, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")},
		Veth:       VethPair{Name: "vobr0", PeerName: "vkbr0", Master: "kbr0", MTU: 1450, DisableOffloads: true},
		Route:      Route{Dst: netip.MustParsePrefix("10.244.0.0/16"), Dev: "kbr0"},
		Masquerade: Masquerade{Enabled: true, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")},
	}
}

func testNames() Names {
	return Names{Bridge: "kbr0", Veth: "vobr0", VethPeer: "vkbr0", RouteDst: netip.MustParsePrefix("10.244.0.0/16")}
}

// snapshot is what "no change" means: same links with the same ifindexes, MTUs, masters and
// flags, the same addresses, routes and nftables ruleset.
type snapshot struct {
	Links  map[string]ipLink
	Addrs  []string
	Routes string
	Nft    string
	Fwd    string
}

func snap(t *testing.T, ns string) snapshot {
	return snapshot{
		Links:  links(t, ns),
		Addrs:  addrs(t, ns, "kbr0"),
		Routes: sh(t, "ip", "-n", ns, "route", "show"),
		Nft:    sh(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset"),
		Fwd:    sh(t, "ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects", "net.ipv4.conf.kbr0.send_redirects"),
	}
}

func TestApplyIsIdempotentAndCleanupRemovesAll(t *testing.T) {
	ns, h := testNS(t)
	s := testState()

	ch, err := Apply(h, s)
	if err != nil {
		t.Fatalf("first Apply: %v (changes %v)", err, ch)
	}
	if len(ch) == 0 {
		t.Fatal("first Apply reported no changes")
	}
	t.Logf("first apply: %v", ch)

	ls := links(t, ns)
	kbr, veth, peer := ls["kbr0"], ls["vobr0"], ls["vkbr0"]
	if kbr.Info.Kind != "bridge" || kbr.MTU != 1450 || kbr.Alias != Alias || !has(kbr.Flags, "UP") {
		t.Errorf("kbr0 = %+v", kbr)
	}
	if kbr.Address != "0a:58:0a:f4:01:01" {
		t.Errorf("kbr0 MAC = %s, want the one derived from 10.244.1.1", kbr.Address)
	}
	if veth.Info.Kind != "veth" || veth.MTU != 1450 || !has(veth.Flags, "UP") || veth.Master != "" {
		t.Errorf("vobr0 = %+v", veth)
	}
	if peer.Info.Kind != "veth" || peer.MTU != 1450 || peer.Master != "kbr0" || !has(peer.Flags, "UP") {
		t.Errorf("vkbr0 = %+v", peer)
	}
	if got := addrs(t, ns, "kbr0"); !reflect.DeepEqual(got, []string{"10.244.1.1/24"}) {
		t.Errorf("kbr0 addresses = %v", got)
	}
	if r := sh(t, "ip", "-n", ns, "route", "show", "10.244.0.0/16"); !strings.Contains(r, "dev kbr0") || !strings.Contains(r, "scope link") {
		t.Errorf("route = %q", r)
	}
	if f := strings.TrimSpace(sh(t, "ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward")); f != "1" {
		t.Errorf("ip_forward = %s", f)
	}
	for _, dev := range []string{"all", "kbr0"} {
		if f := strings.TrimSpace(sh(t, "ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.conf."+dev+".send_redirects")); f != "0" {
			t.Errorf("net.ipv4.conf.%s.send_redirects = %s, want 0 (pods must route through the gateway)", dev, f)
		}
	}
	if got := nftTables(t, ns); !reflect.DeepEqual(got, []string{"ip ovsmesh"}) {
		t.Errorf("nft tables = %v", got)
	}
	rules := sh(t, "ip", "netns", "exec", ns, "nft", "list", "table", "ip", "ovsmesh")
	for _, want := range []string{"type nat hook postrouting priority srcnat", "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade", `comment "ovsmesh: masquerade`} {
		if !strings.Contains(rules, want) {
			t.Errorf("nft table lacks %q:\n%s", want, rules)
		}
	}
	for _, dev := range []string{"vobr0", "vkbr0"} {
		k := sh(t, "ip", "netns", "exec", ns, "ethtool", "-k", dev)
		for _, f := range []string{"rx-checksumming: off", "tx-checksumming: off", "tx-tcp-segmentation: off", "generic-segmentation-offload: off", "generic-receive-offload: off"} {
			if !strings.Contains(k, f) {
				t.Errorf("%s: want %q in ethtool -k", dev, f)
			}
		}
	}

	before := snap(t, ns)
	ch, err = Apply(h, s)
	if err != nil || len(ch) != 0 {
		t.Fatalf("second Apply: changes %v, err %v; want none", ch, err)
	}
	if after := snap(t, ns); !reflect.DeepEqual(before, after) {
		t.Fatalf("second Apply changed the host:\nbefore %+v\nafter  %+v", before, after)
	}

	// Drift is repaired in place: same ifindexes afterwards.
	sh(t, "ip", "-n", ns, "link", "set", "kbr0", "mtu", "1400")
	sh(t, "ip", "-n", ns, "link", "set", "vkbr0", "nomaster")
	sh(t, "ip", "-n", ns, "route", "del", "10.244.0.0/16")
	sh(t, "ip", "netns", "exec", ns, "nft", "add", "rule", "ip", "ovsmesh", "postrouting", "counter")
	ch, err = Apply(h, s)
	if err != nil {
		t.Fatalf("repair Apply: %v", err)
	}
	t.Logf("repair: %v", ch)
	for _, want := range []string{"kbr0: mtu 1400 -> 1450", "vkbr0: master kbr0", "route 10.244.0.0/16 dev kbr0: set", "replaced table ip ovsmesh"} {
		if !containsSub(ch, want) {
			t.Errorf("repair changes %v lack %q", ch, want)
		}
	}
	if after := snap(t, ns); !reflect.DeepEqual(before, after) {
		t.Errorf("after repair the host differs from the first apply:\nbefore %+v\nafter  %+v", before, after)
	}

	ch, err = h.Cleanup(testNames())
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	t.Logf("cleanup: %v", ch)
	ls = links(t, ns)
	if len(ls) != 1 || ls["lo"].Name != "lo" {
		t.Errorf("links left after cleanup: %v", keys(ls))
	}
	if got := nftTables(t, ns); len(got) != 0 {
		t.Errorf("nft tables left after cleanup: %v", got)
	}
	if r := sh(t, "ip", "-n", ns, "route", "show"); strings.TrimSpace(r) != "" {
		t.Errorf("routes left after cleanup: %q", r)
	}
	ch, err = h.Cleanup(testNames())
	if err != nil || len(ch) != 0 {
		t.Errorf("second Cleanup: changes %v err %v, want none", ch, err)
	}
}

func TestBridgeWithForeignAddressIsAConflictAndLeftAlone(t *testing.T) {
	ns, h := testNS(t)
	sh(t, "ip", "-n", ns, "link", "add", "kbr0", "type", "bridge")
	sh(t, "ip", "-n", ns, "addr", "add", "10.9.9.1/24", "dev", "kbr0")
	before := links(t, ns)["kbr0"]

	_, err := Apply(h, testState())
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Link != "kbr0" || !strings.Contains(err.Error(), "10.9.9.1/24") {
		t.Fatalf("Apply err = %v, want a ConflictError naming kbr0 and its address", err)
	}
	if got := addrs(t, ns, "kbr0"); !reflect.DeepEqual(got, []string{"10.9.9.1/24"}) {
		t.Errorf("addresses changed: %v", got)
	}
	if after := links(t, ns)["kbr0"]; !reflect.DeepEqual(before, after) {
		t.Errorf("kbr0 touched:\nbefore %+v\nafter  %+v", before, after)
	}
	// Not ours: cleanup keeps it.
	ch, err := h.Cleanup(testNames())
	if err != nil || !containsSub(ch, "left alone") {
		t.Errorf("Cleanup: %v %v", ch, err)
	}
	if _, ok := links(t, ns)["kbr0"]; !ok {
		t.Error("cleanup removed a kbr0 ovsmesh does not own")
	}

	// A kbr0 that is not a bridge at all.
	sh(t, "ip", "-n", ns, "link", "del", "kbr0")
	sh(t, "ip", "-n", ns, "link", "add", "kbr0", "type", "veth", "peer", "name", "kbr0peer")
	if _, err := h.EnsureBridge(testState().Bridge); !errors.As(err, &ce) || !strings.Contains(err.Error(), "not a bridge") {
		t.Errorf("EnsureBridge on a veth kbr0: %v", err)
	}
}

// TestEmptyBridgeIsAdoptedAndKept: a bridge someone else made is taken over only while it
// is empty, and uninstall gives it back instead of deleting it.
func TestEmptyBridgeIsAdoptedAndKept(t *testing.T) {
	ns, h := testNS(t)
	sh(t, "ip", "-n", ns, "link", "add", "kbr0", "type", "bridge")
	idx := links(t, ns)["kbr0"].Index
	if _, err := Apply(h, testState()); err != nil {
		t.Fatal(err)
	}
	l := links(t, ns)["kbr0"]
	if l.Index != idx || l.Alias != AliasAdopted || l.MTU != 1450 {
		t.Errorf("kbr0 not adopted in place: %+v (index was %d)", l, idx)
	}
	// Its ports now include ovsmesh's veth: the next pass still treats it as ours.
	if ch, err := Apply(h, testState()); err != nil || len(ch) != 0 {
		t.Errorf("second Apply on the adopted bridge: %v %v, want no change", ch, err)
	}
	ch, err := h.Cleanup(testNames())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cleanup: %v", ch)
	l, ok := links(t, ns)["kbr0"]
	if !ok || l.Index != idx {
		t.Fatalf("cleanup deleted the adopted kbr0 (%v)", ch)
	}
	if l.Alias != "" {
		t.Errorf("adopted kbr0 keeps the alias %q after cleanup", l.Alias)
	}
	if got := addrs(t, ns, "kbr0"); len(got) != 0 {
		t.Errorf("adopted kbr0 keeps addresses %v after cleanup", got)
	}
	if r := sh(t, "ip", "-n", ns, "route", "show", "10.244.0.0/16"); strings.TrimSpace(r) != "" {
		t.Errorf("cluster route left: %q", r)
	}
	if _, ok := links(t, ns)["vobr0"]; ok {
		t.Error("veth left after cleanup")
	}
}

// TestEarlierGatewayIsReplaced: a node that left the mesh and came back with another subnet
// while its bridge stayed (the agent did not get to tear down) gets the new gateway in place
// of the old one, on the same bridge; an address outside the cluster CIDR stays a conflict.
func TestEarlierGatewayIsReplaced(t *testing.T) {
	ns, h := testNS(t)
	s := testState()
	earlier := s
	earlier.Bridge.Address = netip.MustParsePrefix("10.244.7.1/24")
	if _, err := Apply(h, earlier); err != nil {
		t.Fatal(err)
	}
	idx := links(t, ns)["kbr0"].Index
	ch, err := Apply(h, s)
	if err != nil {
		t.Fatal(err)
	}
	if !containsSub(ch, "kbr0: removed earlier gateway 10.244.7.1/24") {
		t.Errorf("changes %v", ch)
	}
	if got := addrs(t, ns, "kbr0"); !reflect.DeepEqual(got, []string{"10.244.1.1/24"}) {
		t.Errorf("kbr0 addresses = %v", got)
	}
	if l := links(t, ns)["kbr0"]; l.Index != idx {
		t.Errorf("kbr0 recreated (index %d, was %d)", l.Index, idx)
	}
	sh(t, "ip", "-n", ns, "addr", "add", "192.168.50.1/24", "dev", "kbr0")
	var ce *ConflictError
	if _, err := Apply(h, s); !errors.As(err, &ce) || !strings.Contains(err.Error(), "192.168.50.1/24") {
		t.Errorf("Apply with a foreign address on kbr0: %v, want a ConflictError", err)
	}
}

func TestBridgeInUseIsNotAdopted(t *testing.T) {
	ns, h := testNS(t)
	sh(t, "ip", "-n", ns, "link", "add", "kbr0", "type", "bridge")
	sh(t, "ip", "-n", ns, "link", "add", "user0", "type", "veth", "peer", "name", "user1")
	sh(t, "ip", "-n", ns, "link", "set", "user0", "master", "kbr0")
	before := links(t, ns)

	_, err := Apply(h, testState())
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Link != "kbr0" || !strings.Contains(err.Error(), "user0") || !strings.Contains(err.Error(), "adopts only an empty bridge") {
		t.Fatalf("Apply err = %v, want a ConflictError naming kbr0's port", err)
	}
	after := links(t, ns)
	for _, n := range []string{"kbr0", "user0", "user1"} {
		if !reflect.DeepEqual(before[n], after[n]) {
			t.Errorf("%s touched:\nbefore %+v\nafter  %+v", n, before[n], after[n])
		}
	}
	if got := addrs(t, ns, "kbr0"); len(got) != 0 {
		t.Errorf("addresses added to a bridge in use: %v", got)
	}
	if ch, err := h.Cleanup(testNames()); err != nil || !containsSub(ch, "left alone") {
		t.Errorf("Cleanup: %v %v", ch, err)
	}
	if _, ok := links(t, ns)["kbr0"]; !ok {
		t.Error("cleanup removed a kbr0 ovsmesh does not own")
	}
}

func TestStrayVethIsReplacedOnlyWhenOurs(t *testing.T) {
	ns, h := testNS(t)
	s := testState()
	if _, err := h.EnsureBridge(s.Bridge); err != nil {
		t.Fatal(err)
	}
	// Someone else's veth with ovsmesh's name: a conflict, left alone, also by cleanup.
	sh(t, "ip", "-n", ns, "link", "add", "vobr0", "type", "veth", "peer", "name", "stray0")
	_, err := h.EnsureVethPair(s.Veth)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Link != "vobr0" || !strings.Contains(err.Error(), "stray0") {
		t.Fatalf("EnsureVethPair over a foreign veth: %v, want a ConflictError naming it and its peer", err)
	}
	if ch, err := h.Cleanup(testNames()); err != nil || !containsSub(ch, "vobr0: left alone") {
		t.Errorf("Cleanup: %v %v", ch, err)
	}
	if _, ok := links(t, ns)["stray0"]; !ok {
		t.Fatal("a veth ovsmesh did not create was deleted")
	}

	// One left over from ovsmesh (its mark, another peer): replaced.
	if _, err := h.EnsureBridge(s.Bridge); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "-n", ns, "link", "set", "vobr0", "alias", Alias)
	ch, err := h.EnsureVethPair(s.Veth)
	if err != nil {
		t.Fatal(err)
	}
	if !containsSub(ch, "vobr0: removed stray veth") || !containsSub(ch, "created veth pair") {
		t.Errorf("changes = %v", ch)
	}
	ls := links(t, ns)
	if _, ok := ls["stray0"]; ok {
		t.Error("stray0 still exists")
	}
	if ls["vkbr0"].Master != "kbr0" {
		t.Errorf("vkbr0 = %+v", ls["vkbr0"])
	}
}

// TestForeignRouteIsAConflictAndLeftAlone: a route to the cluster CIDR that ovsmesh did not
// make is reported, never replaced or deleted; one an older agent made through kbr0 is
// taken over in place.
func TestForeignRouteIsAConflictAndLeftAlone(t *testing.T) {
	ns, h := testNS(t)
	s := testState()
	if _, err := h.EnsureBridge(s.Bridge); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "-n", ns, "link", "add", "eth9", "type", "veth", "peer", "name", "eth9peer")
	sh(t, "ip", "-n", ns, "link", "set", "eth9", "up")
	for _, add := range [][]string{
		{"10.244.0.0/16", "dev", "eth9"},
		{"10.244.0.0/16", "dev", "eth9", "metric", "300"},
		{"10.244.0.0/16", "dev", "kbr0", "metric", "50", "proto", "static"}, // through kbr0: ours to fix
	} {
		sh(t, append([]string{"ip", "-n", ns, "route", "add"}, add...)...)
	}
	before := sh(t, "ip", "-n", ns, "route", "show", "10.244.0.0/16")
	_, err := h.EnsureRoute(s.Route)
	var ce *ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "route 10.244.0.0/16") || !strings.Contains(err.Error(), "dev eth9") {
		t.Fatalf("EnsureRoute over a foreign route: %v, want a ConflictError naming it", err)
	}
	if after := sh(t, "ip", "-n", ns, "route", "show", "10.244.0.0/16"); after != before {
		t.Errorf("routes changed:\nbefore %s\nafter  %s", before, after)
	}
	// Cleanup leaves the foreign routes.
	if _, err := h.Cleanup(testNames()); err != nil {
		t.Fatal(err)
	}
	if r := sh(t, "ip", "-n", ns, "route", "show", "10.244.0.0/16"); strings.Count(r, "dev eth9") != 2 {
		t.Errorf("cleanup touched foreign routes: %q", r)
	}

	// Without them, the route through kbr0 an older agent made (no protocol id) is
	// replaced in place.
	sh(t, "ip", "-n", ns, "route", "flush", "10.244.0.0/16")
	if _, err := h.EnsureBridge(s.Bridge); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "-n", ns, "route", "add", "10.244.0.0/16", "dev", "kbr0", "scope", "link")
	sh(t, "ip", "-n", ns, "route", "add", "10.244.0.0/16", "dev", "kbr0", "metric", "50")
	ch, err := h.EnsureRoute(s.Route)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("take over: %v", ch)
	r := strings.TrimSpace(sh(t, "ip", "-n", ns, "route", "show", "10.244.0.0/16"))
	if strings.Count(r, "\n") != 0 || !strings.HasPrefix(r, "10.244.0.0/16 dev kbr0 proto 77 scope link") {
		t.Errorf("route after taking over = %q", r)
	}
	if ch, err := h.EnsureRoute(s.Route); err != nil || len(ch) != 0 {
		t.Errorf("second EnsureRoute: %v %v, want no change", ch, err)
	}
}

func TestMasqueradeFollowsSpec(t *testing.T) {
	ns, h := testNS(t)
	a := Masquerade{Enabled: true, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}
	b := Masquerade{Enabled: true, ClusterCIDR: netip.MustParsePrefix("10.100.0.0/16")}
	steps := []struct {
		m          Masquerade
		wantChange string
		wantTables []string
		wantRule   string
	}{
		{a, "created", []string{"ip ovsmesh"}, "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade"},
		{a, "", []string{"ip ovsmesh"}, "ip saddr 10.244.0.0/16"},
		{b, "replaced", []string{"ip ovsmesh"}, "ip saddr 10.100.0.0/16 ip daddr != 10.100.0.0/16 masquerade"},
		{Masquerade{Enabled: false}, "deleted", nil, ""},
		{Masquerade{Enabled: false}, "", nil, ""},
	}
	for i, st := range steps {
		ch, err := h.EnsureMasquerade(st.m)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if (st.wantChange == "") != (len(ch) == 0) || (st.wantChange != "" && !containsSub(ch, st.wantChange)) {
			t.Errorf("step %d: changes %v, want %q", i, ch, st.wantChange)
		}
		if got := nftTables(t, ns); !reflect.DeepEqual(got, st.wantTables) {
			t.Errorf("step %d: tables %v want %v", i, got, st.wantTables)
		}
		if st.wantRule != "" {
			if r := sh(t, "ip", "netns", "exec", ns, "nft", "list", "table", "ip", "ovsmesh"); !strings.Contains(r, st.wantRule) {
				t.Errorf("step %d: rule %q missing:\n%s", i, st.wantRule, r)
			}
		}
	}
}

func TestFindUnderlay(t *testing.T) {
	ns, h := testNS(t)
	// This kernel has no dummy module: a veth end stands in for the NIC.
	sh(t, "ip", "-n", ns, "link", "add", "eth0", "mtu", "9000", "type", "veth", "peer", "name", "eth0peer")
	sh(t, "ip", "-n", ns, "addr", "add", "172.30.0.7/24", "dev", "eth0")
	u, err := h.FindUnderlay("", netip.MustParseAddr("172.30.0.7"))
	if err != nil || u.Name != "eth0" || u.MTU != 9000 {
		t.Errorf("by address: %+v %v", u, err)
	}
	u, err = h.FindUnderlay("eth0", netip.MustParseAddr("172.30.0.7"))
	if err != nil || u.Name != "eth0" || u.MTU != 9000 {
		t.Errorf("by name: %+v %v", u, err)
	}
	if _, err := h.FindUnderlay("", netip.MustParseAddr("172.30.0.8")); !errors.Is(err, ErrNoUnderlay) {
		t.Errorf("missing address: %v, want ErrNoUnderlay", err)
	}
	if _, err := h.FindUnderlay("eth9", netip.Addr{}); err == nil {
		t.Error("missing interface: no error")
	}
}

func has(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func containsSub(ss []string, sub string) bool {
	for _, x := range ss {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

func keys(m map[string]ipLink) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}
