package hostnet

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

// TestFakeApplyConvergesAndIsIdempotent: Apply through the Fake builds the whole host side,
// a second Apply changes nothing, and Cleanup removes what it made (twice is fine).
func TestFakeApplyConvergesAndIsIdempotent(t *testing.T) {
	f := NewFake()
	s := testState()
	ch, err := Apply(f, s)
	if err != nil || len(ch) == 0 {
		t.Fatalf("first Apply: %v %v", ch, err)
	}
	if !VethCreated(ch, s.Veth) {
		t.Errorf("first Apply does not say the veth was created: %v", ch)
	}
	kbr, _ := f.Link("kbr0")
	if kbr.Kind != "bridge" || kbr.MTU != 1450 || !kbr.Up || kbr.Alias != Alias || !reflect.DeepEqual(kbr.Addrs, []netip.Prefix{s.Bridge.Address}) {
		t.Errorf("kbr0 = %+v", kbr)
	}
	a, _ := f.Link("vobr0")
	b, _ := f.Link("vkbr0")
	if a.Peer != "vkbr0" || b.Peer != "vobr0" || b.Master != "kbr0" || a.Master != "" || !a.Up || !b.Up || !a.OffloadsOff || !b.OffloadsOff || a.MTU != 1450 || b.MTU != 1450 {
		t.Errorf("veth = %+v / %+v", a, b)
	}
	if want := []FakeRoute{{Dst: s.Route.Dst, Dev: "kbr0", Protocol: RouteProtocol}}; !reflect.DeepEqual(f.Routes, want) {
		t.Errorf("routes = %v", f.Routes)
	}
	if f.Masquerade == nil || *f.Masquerade != s.Masquerade {
		t.Errorf("masquerade = %v", f.Masquerade)
	}
	for _, k := range []string{"net.ipv4.conf.all.send_redirects", "net.ipv4.conf.kbr0.send_redirects"} {
		if f.Sysctls[k] != "0" {
			t.Errorf("%s = %q", k, f.Sysctls[k])
		}
	}
	if f.Sysctls["net.ipv4.ip_forward"] != "1" {
		t.Errorf("ip_forward = %q", f.Sysctls["net.ipv4.ip_forward"])
	}
	want := []string{"EnsureIPForwarding", "EnsureBridge", "EnsureNoRedirects", "EnsureVethPair", "EnsureRoute", "EnsureMasquerade"}
	if got := f.Methods(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}

	before := a.Index
	if ch, err := Apply(f, s); err != nil || len(ch) != 0 {
		t.Fatalf("second Apply: %v %v; want no change", ch, err)
	}
	if a, _ := f.Link("vobr0"); a.Index != before {
		t.Errorf("vobr0 ifindex %d -> %d", before, a.Index)
	}

	if _, err := f.Cleanup(testNames()); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(f.Links)); !reflect.DeepEqual(got, []string{"lo"}) || len(f.Routes) != 0 || f.Masquerade != nil {
		t.Errorf("after Cleanup: links %v routes %v masquerade %v", got, f.Routes, f.Masquerade)
	}
	if f.Sysctls["net.ipv4.ip_forward"] != "1" {
		t.Error("Cleanup reset ip_forward")
	}
	if ch, err := f.Cleanup(testNames()); err != nil || len(ch) != 0 {
		t.Errorf("second Cleanup: %v %v", ch, err)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestFakeConflictsLeaveTheHostAlone: what Interface says is a *ConflictError is one in the
// Fake too, and changes nothing.
func TestFakeConflictsLeaveTheHostAlone(t *testing.T) {
	s := testState()
	tests := []struct {
		name  string
		setup func(f *Fake)
		check func(t *testing.T, f *Fake)
	}{
		{"bridge with a foreign address", func(f *Fake) {
			f.AddLink(FakeLink{Name: "kbr0", Kind: "bridge", MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.9.1/24")}})
		}, func(t *testing.T, f *Fake) {
			if l, _ := f.Link("kbr0"); l.MTU != 1500 || l.Up || l.Alias != "" || len(l.Addrs) != 1 {
				t.Errorf("kbr0 changed: %+v", l)
			}
		}},
		{"foreign bridge in use", func(f *Fake) {
			f.AddLink(FakeLink{Name: "kbr0", Kind: "bridge", MTU: 1500})
			f.AddLink(FakeLink{Name: "eth1", Kind: "dummy", MTU: 1500, Master: "kbr0"})
		}, func(t *testing.T, f *Fake) {
			if l, _ := f.Link("kbr0"); l.Alias != "" || len(l.Addrs) != 0 {
				t.Errorf("kbr0 changed: %+v", l)
			}
		}},
		{"kbr0 is not a bridge", func(f *Fake) {
			f.AddLink(FakeLink{Name: "kbr0", Kind: "dummy", MTU: 1500})
		}, func(t *testing.T, f *Fake) {}},
		{"unmarked veth", func(f *Fake) {
			f.AddLink(FakeLink{Name: "vobr0", Kind: "veth", MTU: 1500, Peer: "other"})
			f.AddLink(FakeLink{Name: "other", Kind: "veth", MTU: 1500, Peer: "vobr0"})
		}, func(t *testing.T, f *Fake) {
			if _, ok := f.Link("other"); !ok {
				t.Error("someone else's veth was deleted")
			}
		}},
		{"foreign route", func(f *Fake) {
			f.AddLink(FakeLink{Name: "tun0", Kind: "tun", MTU: 1400})
			f.Routes = []FakeRoute{{Dst: s.Route.Dst, Dev: "tun0", Protocol: 4}}
		}, func(t *testing.T, f *Fake) {
			if len(f.Routes) != 1 || f.Routes[0].Dev != "tun0" {
				t.Errorf("routes = %v", f.Routes)
			}
			if f.Masquerade != nil {
				t.Error("Apply went on past the conflict")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake()
			tc.setup(f)
			_, err := Apply(f, s)
			var ce *ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("Apply: %v, want a *ConflictError", err)
			}
			tc.check(t, f)
		})
	}
}

// TestFakeAdoptsAndReplaces: an empty foreign bridge is adopted and kept by Cleanup; an
// earlier gateway inside the cluster CIDR is replaced; a stray marked veth is made anew.
func TestFakeAdoptsAndReplaces(t *testing.T) {
	s := testState()
	f := NewFake()
	f.AddLink(FakeLink{Name: "kbr0", Kind: "bridge", MTU: 1500})
	f.AddLink(FakeLink{Name: "vobr0", Kind: "veth", MTU: 1500, Alias: Alias, Peer: "gone"})
	old := f.Links["vobr0"].Index
	ch, err := Apply(f, s)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := f.Link("kbr0"); l.Alias != AliasAdopted {
		t.Errorf("kbr0 alias %q, want adopted", l.Alias)
	}
	if a, _ := f.Link("vobr0"); a.Index == old || a.Peer != "vkbr0" || !VethCreated(ch, s.Veth) {
		t.Errorf("stray vobr0 not replaced: %+v, changes %v", a, ch)
	}

	s.Bridge.Address = netip.MustParsePrefix("10.244.7.1/24")
	ch, err = Apply(f, s)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := f.Link("kbr0"); !reflect.DeepEqual(l.Addrs, []netip.Prefix{s.Bridge.Address}) {
		t.Errorf("kbr0 addresses %v after a new gateway (changes %v)", l.Addrs, ch)
	}

	if _, err := f.Cleanup(testNames()); err != nil {
		t.Fatal(err)
	}
	l, ok := f.Link("kbr0")
	if !ok || l.Alias != "" || len(l.Addrs) != 0 || len(f.Routes) != 0 {
		t.Errorf("adopted kbr0 after Cleanup: %+v (present %v), routes %v", l, ok, f.Routes)
	}
}

// TestFakeFailAndRecord: an injected error is returned by that method alone, changes
// nothing, and the calls are recorded in order, the failed one included.
func TestFakeFailAndRecord(t *testing.T) {
	f := NewFake()
	injected := &ConflictError{Link: "route 10.244.0.0/16", What: "injected"}
	f.Fail["EnsureRoute"] = injected
	var hooked []string
	f.OnCall = func(m string) { hooked = append(hooked, m) }
	_, err := Apply(f, testState())
	if err != injected {
		t.Fatalf("Apply: %v, want the injected error", err)
	}
	want := []string{"EnsureIPForwarding", "EnsureBridge", "EnsureNoRedirects", "EnsureVethPair", "EnsureRoute"}
	if got := f.Methods(); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(hooked, want) {
		t.Errorf("calls %v, hooked %v, want %v", got, hooked, want)
	}
	if c := f.Calls()[4]; c.Arg != testState().Route {
		t.Errorf("EnsureRoute recorded with %v", c.Arg)
	}
	if len(f.Routes) != 0 {
		t.Errorf("a failed EnsureRoute changed the routes: %v", f.Routes)
	}
	delete(f.Fail, "EnsureRoute")
	f.ResetCalls()
	if _, err := Apply(f, testState()); err != nil || len(f.Routes) != 1 {
		t.Errorf("after the failure is lifted: %v, routes %v", err, f.Routes)
	}
}

// TestFakeMatchesHost runs the same scenario through the Fake and through Host in a fresh
// network namespace and compares the changes they report: the Fake is only worth its
// tests while it says what Host says. Root and the test bed, like every Host test.
func TestFakeMatchesHost(t *testing.T) {
	ns, h := testNS(t)
	f := NewFake()
	// The namespace's own ip_forward and send_redirects start where NewFake's do.
	if got := sh(t, "ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects"); got != "0\n1\n" {
		t.Fatalf("fresh namespace sysctls %q", got)
	}
	steps := []struct {
		name string
		do   func(i Interface) ([]string, error)
	}{
		{"first apply", func(i Interface) ([]string, error) { return Apply(i, testState()) }},
		{"second apply", func(i Interface) ([]string, error) { return Apply(i, testState()) }},
		{"new MTU and gateway", func(i Interface) ([]string, error) {
			s := testState()
			s.Bridge.MTU, s.Veth.MTU = 1400, 1400
			s.Bridge.Address = netip.MustParsePrefix("10.244.9.1/24")
			return Apply(i, s)
		}},
		{"masquerade off", func(i Interface) ([]string, error) {
			s := testState()
			s.Bridge.MTU, s.Veth.MTU = 1400, 1400
			s.Bridge.Address = netip.MustParsePrefix("10.244.9.1/24")
			s.Masquerade.Enabled = false
			return Apply(i, s)
		}},
		{"cleanup", func(i Interface) ([]string, error) { return i.Cleanup(testNames()) }},
		{"second cleanup", func(i Interface) ([]string, error) { return i.Cleanup(testNames()) }},
	}
	for _, st := range steps {
		hc, herr := st.do(h)
		fc, ferr := st.do(f)
		if herr != nil || ferr != nil {
			t.Fatalf("%s: host %v, fake %v", st.name, herr, ferr)
		}
		if !reflect.DeepEqual(hc, fc) {
			t.Errorf("%s: changes differ\nhost: %q\nfake: %q", st.name, hc, fc)
		}
	}
}

// TestFakeMatchesHostOnWhatItFinds: the same comparison, starting from what another program
// left: an empty bridge of ovsmesh's name (adopted, then given back), and a marked veth whose
// peer is not ovsmesh's (replaced).
func TestFakeMatchesHostOnWhatItFinds(t *testing.T) {
	tests := []struct {
		name string
		ip   [][]string // ip -n NS ... commands that set up the namespace
		fake func(f *Fake)
	}{
		{"empty bridge", [][]string{{"link", "add", "kbr0", "type", "bridge"}}, func(f *Fake) {
			f.AddLink(FakeLink{Name: "kbr0", Kind: "bridge", MTU: 1500})
		}},
		{"stray marked veth", [][]string{
			{"link", "add", "vobr0", "type", "veth", "peer", "name", "gone0"},
			{"link", "set", "vobr0", "alias", Alias},
		}, func(f *Fake) {
			f.AddLink(FakeLink{Name: "vobr0", Kind: "veth", MTU: 1500, Alias: Alias, Peer: "gone0"})
			f.AddLink(FakeLink{Name: "gone0", Kind: "veth", MTU: 1500, Peer: "vobr0"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, h := testNS(t)
			for _, c := range tc.ip {
				sh(t, append([]string{"ip", "-n", ns}, c...)...)
			}
			f := NewFake()
			tc.fake(f)
			for i, do := range []func(i Interface) ([]string, error){
				func(i Interface) ([]string, error) { return Apply(i, testState()) },
				func(i Interface) ([]string, error) { return Apply(i, testState()) },
				func(i Interface) ([]string, error) { return i.Cleanup(testNames()) },
			} {
				hc, herr := do(h)
				fc, ferr := do(f)
				if herr != nil || ferr != nil {
					t.Fatalf("step %d: host %v, fake %v", i, herr, ferr)
				}
				if !reflect.DeepEqual(hc, fc) {
					t.Errorf("step %d: changes differ\nhost: %q\nfake: %q", i, hc, fc)
				}
			}
		})
	}
}
