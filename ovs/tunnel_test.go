package ovs

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/ovsmesh/ovsmesh/ovs/model"
)

func TestPortName(t *testing.T) {
	for _, tc := range []struct {
		spec TunnelSpec
		want string
	}{
		{TunnelSpec{RemoteIP: "10.244.0.1", Type: "gre"}, "gre-0af40001"},
		{TunnelSpec{RemoteIP: "10.244.0.1", Type: "GRE"}, "gre-0af40001"},
		{TunnelSpec{RemoteIP: "10.244.0.1", Type: "VXLAN"}, "vxlan-0af40001"},
		{TunnelSpec{RemoteIP: "255.255.255.255", Type: "vxlan"}, "vxlan-ffffffff"},
		{TunnelSpec{RemoteIP: "::ffff:10.244.0.1", Type: "gre"}, "gre-0af40001"},
		{TunnelSpec{RemoteIP: "10.244.0.1", Type: "geneve"}, ""},
		{TunnelSpec{RemoteIP: "node2", Type: "gre"}, ""},
	} {
		if got := PortName(tc.spec); got != tc.want {
			t.Errorf("PortName(%+v) = %q, want %q", tc.spec, got, tc.want)
		}
	}
	for _, typ := range []string{"gre", "vxlan"} {
		n := PortName(TunnelSpec{RemoteIP: "fd00:1234::5", Type: typ})
		if len(n) != 15 || !strings.HasPrefix(n, typ+"6-") {
			t.Errorf("IPv6 %s name %q: want 15 characters with prefix %s6-", typ, n, typ)
		}
		if n != PortName(TunnelSpec{RemoteIP: "fd00:1234:0::5", Type: typ}) {
			t.Errorf("IPv6 name depends on the spelling of the address")
		}
	}
	// Collision-free over a whole /16, for both types together, and within IFNAMSIZ.
	seen := map[string]string{}
	for i := 0; i < 1<<16; i++ {
		for _, typ := range []string{"gre", "vxlan"} {
			ip := fmt.Sprintf("10.%d.%d.1", i>>8, i&0xff)
			n := PortName(TunnelSpec{RemoteIP: ip, Type: typ})
			if len(n) > 15 {
				t.Fatalf("%s is longer than 15 characters", n)
			}
			if prev, dup := seen[n]; dup {
				t.Fatalf("%s and %s/%s both map to %s", prev, ip, typ, n)
			}
			seen[n] = ip + "/" + typ
		}
	}
}

func TestValidateTunnel(t *testing.T) {
	ok := TunnelSpec{PeerName: "n2", RemoteIP: "172.30.0.2", Type: "vxlan", Key: key(1<<24 - 1), DstPort: 4789, LocalIP: "172.30.0.1"}
	if err := validateTunnel(ok); err != nil {
		t.Errorf("valid spec: %v", err)
	}
	for name, mutate := range map[string]func(*TunnelSpec){
		"no peer name":   func(s *TunnelSpec) { s.PeerName = "" },
		"bad type":       func(s *TunnelSpec) { s.Type = "geneve" },
		"bad remote":     func(s *TunnelSpec) { s.RemoteIP = "node2" },
		"zero remote":    func(s *TunnelSpec) { s.RemoteIP = "0.0.0.0" },
		"multicast":      func(s *TunnelSpec) { s.RemoteIP = "239.1.1.1" },
		"zone":           func(s *TunnelSpec) { s.RemoteIP = "fe80::1%eth0" },
		"vni too big":    func(s *TunnelSpec) { s.Key = key(1 << 24) },
		"negative key":   func(s *TunnelSpec) { s.Key = key(-1) },
		"family mix":     func(s *TunnelSpec) { s.LocalIP = "fd00::1" },
		"bad local":      func(s *TunnelSpec) { s.LocalIP = "x" },
		"port too large": func(s *TunnelSpec) { s.DstPort = 70000 },
	} {
		s := ok
		mutate(&s)
		if err := validateTunnel(s); err == nil {
			t.Errorf("%s: accepted %+v", name, s)
		}
	}
	gre := TunnelSpec{PeerName: "n2", RemoteIP: "172.30.0.2", Type: "gre", Key: key(1<<32 - 1)}
	if err := validateTunnel(gre); err != nil {
		t.Errorf("32-bit GRE key: %v", err)
	}
}

func TestConfigFor(t *testing.T) {
	c := configFor(TunnelSpec{PeerName: "n2", RemoteIP: "::ffff:172.30.0.2", Type: "GRE", Key: key(0), DstPort: 4789, BFD: true})
	want := map[string]string{"remote_ip": "172.30.0.2", "key": "0"}
	if c.Name != "gre-ac1e0002" || c.Type != "gre" || !maps.Equal(c.Options, want) || c.BFD["enable"] != "true" {
		t.Errorf("configFor = %+v; want options %v (GRE ignores dst_port) and bfd on", c, want)
	}
	c = configFor(TunnelSpec{PeerName: "n2", RemoteIP: "fd00::0002", Type: "vxlan", LocalIP: "fd00::1"})
	want = map[string]string{"remote_ip": "fd00::2", "local_ip": "fd00::1"}
	if !maps.Equal(c.Options, want) || len(c.BFD) != 0 {
		t.Errorf("configFor = %+v, want options %v", c, want)
	}
}

func TestPlanTunnels(t *testing.T) {
	spec := func(peer, ip, typ string) TunnelSpec {
		return TunnelSpec{PeerName: peer, RemoteIP: ip, Type: typ, Key: key(42)}
	}
	have := func(s TunnelSpec) haveTunnel {
		cfg := configFor(s)
		return haveTunnel{PortUUID: "p-" + cfg.Name, Name: cfg.Name, PortExternalIDs: tunnelTags(cfg.Peer),
			Iface: &model.Interface{UUID: "i-" + cfg.Name, Name: cfg.Name, Type: cfg.Type, Options: cfg.Options,
				BFD: cfg.BFD, ExternalIDs: tunnelTags(cfg.Peer)}}
	}
	free := func(string) (bool, error) { return false, nil }

	a, b, cc := spec("a", "10.0.0.1", "gre"), spec("b", "10.0.0.2", "gre"), spec("c", "10.0.0.3", "gre")
	existing := map[string]haveTunnel{"gre-0a000001": have(a), "gre-0a000002": have(b)}

	plan, err := planTunnels([]TunnelSpec{a, b}, existing, free)
	if err != nil || !plan.empty() {
		t.Errorf("unchanged set: plan %+v, %v; want empty", plan, err)
	}
	bNewKey := b
	bNewKey.Key = key(7)
	plan, err = planTunnels([]TunnelSpec{a, bNewKey, cc}, existing, free)
	if err != nil || len(plan.Add) != 1 || plan.Add[0].Name != "gre-0a000003" || len(plan.Update) != 1 ||
		plan.Update[0].IfaceColumns[0] != "options" || plan.Update[0].PortPeerTag || len(plan.Remove) != 0 {
		t.Errorf("add c, rekey b: plan %+v, %v", plan, err)
	}
	plan, err = planTunnels([]TunnelSpec{spec("a", "10.0.0.1", "vxlan")}, existing, free)
	if err != nil || len(plan.Add) != 1 || len(plan.Remove) != 2 {
		t.Errorf("gre->vxlan with one peer left: plan %+v, %v", plan, err)
	}
	taken := func(n string) (bool, error) { return n == "gre-0a000003", nil }
	plan, err = planTunnels([]TunnelSpec{a, b, cc}, existing, taken)
	if err != nil || len(plan.Add) != 0 || len(plan.Conflicts) != 1 || !plan.empty() {
		t.Errorf("name taken: plan %+v, %v; want one conflict and nothing else", plan, err)
	}
	if _, err := planTunnels([]TunnelSpec{a, spec("a2", "10.0.0.1", "GRE")}, existing, free); err == nil {
		t.Errorf("two peers with one address: no error")
	}
	if _, err := planTunnels([]TunnelSpec{spec("", "10.0.0.1", "gre")}, existing, free); err == nil {
		t.Errorf("invalid spec: no error")
	}
	odd := have(a)
	odd.Iface = nil
	plan, err = planTunnels([]TunnelSpec{a}, map[string]haveTunnel{"gre-0a000001": odd}, free)
	if err != nil || len(plan.Add) != 1 || len(plan.Remove) != 1 {
		t.Errorf("odd owned port: plan %+v, %v; want it replaced", plan, err)
	}
}

func TestOnlySecondsInStateChanged(t *testing.T) {
	o := &model.Port{UUID: "u", Name: "p", Status: map[string]string{"stp_state": "forwarding", "stp_sec_in_state": "5"}}
	n := &model.Port{UUID: "u", Name: "p", Status: map[string]string{"stp_state": "forwarding", "stp_sec_in_state": "10"}}
	if !onlySecondsInStateChanged(o, n) {
		t.Errorf("sec_in_state tick counted as a change")
	}
	n.Status["stp_state"] = "blocking"
	if onlySecondsInStateChanged(o, n) {
		t.Errorf("stp_state change ignored")
	}
	n = &model.Port{UUID: "u", Name: "p2", Status: o.Status}
	if onlySecondsInStateChanged(o, n) {
		t.Errorf("rename ignored")
	}
}

func TestSyntheticPeers(t *testing.T) {
	peers := SyntheticPeers(1000, "vxlan")
	if len(peers) != 1000 || peers[0].RemoteIP != "198.18.0.1" || peers[999].RemoteIP != "198.18.3.232" {
		t.Fatalf("SyntheticPeers: %d, first %s, last %s", len(peers), peers[0].RemoteIP, peers[999].RemoteIP)
	}
	if _, err := planTunnels(peers, nil, func(string) (bool, error) { return false, nil }); err != nil {
		t.Errorf("SyntheticPeers are not valid: %v", err)
	}
	if p := SyntheticPeers(70000, "gre"); p[69999].RemoteIP != "198.19.17.112" {
		t.Errorf("70,000th synthetic peer %s", p[69999].RemoteIP)
	}
}
