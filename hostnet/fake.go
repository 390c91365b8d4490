package hostnet

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ovsmesh/ovsmesh/internal/fakecalls"
)

// Fake is an in-memory Interface for tests that need no root and no network namespace: the
// agent's unit tests drive Apply and Cleanup through it. It keeps a model of links (with
// their addresses, master, alias, up state and offloads), routes, the masquerade table and
// the sysctls ovsmesh sets, and each method follows the contract written on Interface
// against that model, returning the same change messages as Host for the same change (the
// agent reads one of them: VethCreated). It records every call in order and can make any
// method fail.
//
// It lives in package hostnet, not in a test-only package, so that it shares the change
// messages, the marks (Alias, AliasAdopted) and ConflictError with Host instead of copying
// them; a binary that never refers to it links none of it.
//
// Set the exported fields up before handing the Fake to the code under test (or from
// OnCall); its methods are safe for concurrent use among themselves.
type Fake struct {
	mu sync.Mutex

	// Links is the host's links by name.
	Links map[string]*FakeLink
	// Routes is the main routing table.
	Routes []FakeRoute
	// Masquerade is table ip ovsmesh: nil when absent, else the rule it holds.
	Masquerade *Masquerade
	// Sysctls holds the sysctls by dotted name ("net.ipv4.ip_forward"). A per-device key
	// (net.ipv4.conf.DEV.send_redirects) exists while DEV does; NewFake and AddLink give
	// the kernel's defaults.
	Sysctls map[string]string

	// Fail makes the method of that name (e.g. "EnsureRoute", "Cleanup") return the error
	// without changing anything. Any error works, a *ConflictError included.
	Fail map[string]error
	// OnCall, when set, is called with the method name at the start of every call, before
	// the model is read or changed (tests use it to observe what else has happened by then).
	// It is called without the Fake's lock held.
	OnCall func(method string)

	// The calls received, in order: Calls, Methods, ResetCalls.
	fakecalls.Log[FakeCall]
	lastIndex int
}

// FakeLink is one link of the Fake's model.
type FakeLink struct {
	Name string
	// Kind is the link type as netlink names it: "bridge", "veth", "dummy", ...
	Kind  string
	Index int
	MTU   int
	Up    bool
	Alias string
	// Master is the name of the bridge the link is enslaved to ("" none).
	Master string
	// Peer is the name of the other end of a veth ("" none).
	Peer  string
	Addrs []netip.Prefix
	// OffloadsOff: checksum, TSO, GSO and GRO offloads are off.
	OffloadsOff bool
}

// FakeRoute is one route of the Fake's main table.
type FakeRoute struct {
	Dst      netip.Prefix
	Dev      string
	Protocol int // RouteProtocol for ovsmesh's
	Metric   int
}

func (r FakeRoute) String() string {
	return fmt.Sprintf("%s dev %s proto %d metric %d", r.Dst, r.Dev, r.Protocol, r.Metric)
}

// FakeCall is one recorded call: the method name and its argument (nil for none).
type FakeCall struct {
	Method string
	Arg    any
}

// MethodName implements fakecalls.Call.
func (c FakeCall) MethodName() string { return c.Method }

var _ Interface = (*Fake)(nil)

// NewFake returns a Fake holding only lo, with ip_forward off and send_redirects on (a new
// network namespace).
func NewFake() *Fake {
	f := &Fake{
		Links:   map[string]*FakeLink{},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.send_redirects": "1"},
		Fail:    map[string]error{},
	}
	f.AddLink(FakeLink{Name: "lo", Kind: "loopback", MTU: 65536, Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}})
	return f
}

// AddLink puts l on the host as it is (test setup: an underlay, or something in ovsmesh's
// way), giving it the next ifindex when l.Index is 0. It returns the link in the model.
func (f *Fake) AddLink(l FakeLink) *FakeLink {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLink(l)
}

func (f *Fake) addLink(l FakeLink) *FakeLink {
	if f.Links == nil {
		f.Links = map[string]*FakeLink{}
	}
	if f.Sysctls == nil {
		f.Sysctls = map[string]string{}
	}
	if l.Index == 0 {
		f.lastIndex++
		l.Index = f.lastIndex
	} else if l.Index > f.lastIndex {
		f.lastIndex = l.Index
	}
	l.Addrs = slices.Clone(l.Addrs)
	f.Links[l.Name] = &l
	f.Sysctls[redirectsKey(l.Name)] = "1"
	return &l
}

// Link returns a copy of the link named name.
func (f *Fake) Link(name string) (FakeLink, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.Links[name]
	if !ok {
		return FakeLink{}, false
	}
	c := *l
	c.Addrs = slices.Clone(l.Addrs)
	return c, true
}

// begin records a call, runs OnCall and returns the injected error, if any. On nil the
// caller holds f.mu and must release it.
func (f *Fake) begin(method string, arg any) error {
	f.mu.Lock()
	f.Record(FakeCall{Method: method, Arg: arg})
	hook := f.OnCall
	f.mu.Unlock()
	if hook != nil {
		hook(method)
	}
	f.mu.Lock()
	if err := f.Fail[method]; err != nil {
		f.mu.Unlock()
		return err
	}
	return nil
}

func errNoLink(name string) error { return fmt.Errorf("%s: Link not found", name) }

func redirectsKey(dev string) string { return "net.ipv4.conf." + dev + ".send_redirects" }

// FindUnderlay follows Interface.FindUnderlay: the link named name, else the one holding
// addr; it changes nothing.
func (f *Fake) FindUnderlay(name string, addr netip.Addr) (Underlay, error) {
	if err := f.begin("FindUnderlay", addr); err != nil {
		return Underlay{}, err
	}
	defer f.mu.Unlock()
	if name != "" {
		l := f.Links[name]
		if l == nil {
			return Underlay{}, fmt.Errorf("underlay interface %s: %w", name, errNoLink(name))
		}
		return Underlay{Name: name, MTU: l.MTU, Addr: addr}, nil
	}
	for _, n := range f.linkNames() {
		l := f.Links[n]
		for _, a := range l.Addrs {
			if a.Addr() == addr {
				return Underlay{Name: l.Name, MTU: l.MTU, Addr: addr}, nil
			}
		}
	}
	return Underlay{}, fmt.Errorf("%w %s", ErrNoUnderlay, addr)
}

// linkNames returns the link names by ifindex, the order the kernel lists them in.
func (f *Fake) linkNames() []string {
	names := make([]string, 0, len(f.Links))
	for n := range f.Links {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return f.Links[names[i]].Index < f.Links[names[j]].Index })
	return names
}

func (f *Fake) ensureSysctl(key, want string) ([]string, error) {
	cur, ok := f.Sysctls[key]
	if !ok {
		return nil, fmt.Errorf("reading /proc/sys/%s: no such file or directory", strings.ReplaceAll(key, ".", "/"))
	}
	if cur == want {
		return nil, nil
	}
	f.Sysctls[key] = want
	return []string{key + ": " + want}, nil
}

// EnsureIPForwarding follows Interface.EnsureIPForwarding.
func (f *Fake) EnsureIPForwarding() ([]string, error) {
	if err := f.begin("EnsureIPForwarding", nil); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	return f.ensureSysctl("net.ipv4.ip_forward", "1")
}

// EnsureNoRedirects follows Interface.EnsureNoRedirects; dev must exist.
func (f *Fake) EnsureNoRedirects(dev string) ([]string, error) {
	if err := f.begin("EnsureNoRedirects", dev); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var ch []string
	for _, d := range []string{"all", dev} {
		c, err := f.ensureSysctl(redirectsKey(d), "0")
		ch = append(ch, c...)
		if err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// portsOf returns the names of the links enslaved to br.
func (f *Fake) portsOf(br string) []string {
	var ports []string
	for _, n := range f.linkNames() {
		if f.Links[n].Master == br {
			ports = append(ports, n)
		}
	}
	return ports
}

// basics fixes alias, MTU, master (when master != "") and up state in place, with Host's
// messages.
func (f *Fake) basics(l *FakeLink, alias string, mtu int, master string) []string {
	var ch []string
	if l.Alias != alias {
		l.Alias = alias
		ch = append(ch, fmt.Sprintf("%s: alias %q", l.Name, alias))
	}
	if mtu != 0 && l.MTU != mtu {
		ch = append(ch, fmt.Sprintf("%s: mtu %d -> %d", l.Name, l.MTU, mtu))
		l.MTU = mtu
	}
	if master != "" && l.Master != master {
		l.Master = master
		ch = append(ch, fmt.Sprintf("%s: master %s", l.Name, master))
	}
	if !l.Up {
		l.Up = true
		ch = append(ch, fmt.Sprintf("%s: up", l.Name))
	}
	return ch
}

// EnsureBridge follows Interface.EnsureBridge: created when missing, adopted only when
// empty, a *ConflictError (and nothing changed) for a non-bridge, a foreign bridge with
// ports, or an address it must not remove.
func (f *Fake) EnsureBridge(b Bridge) ([]string, error) {
	if err := f.begin("EnsureBridge", b); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var ch []string
	l := f.Links[b.Name]
	created := l == nil
	if created {
		l = f.addLink(FakeLink{Name: b.Name, Kind: "bridge", MTU: b.MTU})
		ch = append(ch, fmt.Sprintf("%s: created bridge", b.Name))
	} else if l.Kind != "bridge" {
		return nil, &ConflictError{Link: b.Name, What: fmt.Sprintf("exists as a %s link, not a bridge; remove it or choose another bridges.linux name", l.Kind)}
	}
	alias := l.Alias
	if created {
		alias = Alias
	} else if !owned(alias) {
		if ports := f.portsOf(b.Name); len(ports) > 0 {
			return ch, &ConflictError{Link: b.Name, What: fmt.Sprintf("is a bridge ovsmesh did not create and it has ports (%s); ovsmesh adopts only an empty bridge: remove the ports or choose another bridges.linux name", strings.Join(ports, ", "))}
		}
		alias = AliasAdopted
	}
	has := false
	var stale []netip.Prefix
	for _, p := range l.Addrs {
		if p == b.Address {
			has = true
			continue
		}
		if owned(l.Alias) && b.ClusterCIDR.IsValid() && b.ClusterCIDR.Contains(p.Addr()) {
			stale = append(stale, p)
			continue
		}
		return ch, &ConflictError{Link: b.Name, What: fmt.Sprintf("already has address %s, want %s; ovsmesh will not take over a bridge configured for something else", p, b.Address)}
	}
	ch = append(ch, f.basics(l, alias, b.MTU, "")...)
	if !has {
		l.Addrs = append(l.Addrs, b.Address)
		ch = append(ch, fmt.Sprintf("%s: added address %s", b.Name, b.Address))
	}
	for _, p := range stale {
		l.Addrs = slices.DeleteFunc(l.Addrs, func(a netip.Prefix) bool { return a == p })
		ch = append(ch, fmt.Sprintf("%s: removed earlier gateway %s", b.Name, p))
	}
	return ch, nil
}

// vethMarked reports whether the veth l or its peer (pointing back) carries a mark.
func (f *Fake) vethMarked(l *FakeLink) bool {
	if owned(l.Alias) {
		return true
	}
	p := f.Links[l.Peer]
	return p != nil && p.Kind == "veth" && p.Peer == l.Name && owned(p.Alias)
}

// deleteLink removes l as the kernel does: a veth with its peer, the routes through it, and
// its ports released.
func (f *Fake) deleteLink(l *FakeLink) {
	if l.Kind == "veth" {
		if p := f.Links[l.Peer]; p != nil && p.Peer == l.Name {
			f.deleteOne(p)
		}
	}
	f.deleteOne(l)
}

func (f *Fake) deleteOne(l *FakeLink) {
	delete(f.Links, l.Name)
	delete(f.Sysctls, redirectsKey(l.Name))
	f.Routes = slices.DeleteFunc(f.Routes, func(r FakeRoute) bool { return r.Dev == l.Name })
	for _, o := range f.Links {
		if o.Master == l.Name {
			o.Master = ""
		}
	}
}

// EnsureVethPair follows Interface.EnsureVethPair: a right pair is kept (same ifindexes);
// marked ends that are not each other's peer are deleted and the pair made anew; an
// unmarked veth or a non-veth of either name is a *ConflictError.
func (f *Fake) EnsureVethPair(v VethPair) ([]string, error) {
	if err := f.begin("EnsureVethPair", v); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var ch []string
	if f.Links[v.Master] == nil {
		return nil, fmt.Errorf("veth master %s: %w", v.Master, errNoLink(v.Master))
	}
	a, b := f.Links[v.Name], f.Links[v.PeerName]
	for _, l := range []*FakeLink{a, b} {
		if l != nil && l.Kind != "veth" {
			return nil, &ConflictError{Link: l.Name, What: fmt.Sprintf("exists as a %s link, not a veth", l.Kind)}
		}
	}
	paired := a != nil && b != nil && a.Peer == b.Name && b.Peer == a.Name
	if !paired {
		for _, l := range []*FakeLink{a, b} {
			if l != nil && !f.vethMarked(l) {
				return nil, &ConflictError{Link: l.Name, What: fmt.Sprintf("is a veth ovsmesh did not create (peer %s, no %q alias); ovsmesh will not delete it: remove it or choose other bridge names", l.Peer, Alias)}
			}
		}
		for _, l := range []*FakeLink{a, b} {
			if l == nil || f.Links[l.Name] != l {
				continue // deleted with its peer already
			}
			f.deleteLink(l)
			other := v.Name
			if l.Name == v.Name {
				other = v.PeerName
			}
			ch = append(ch, fmt.Sprintf("%s: removed stray veth (peer was not %s)", l.Name, other))
		}
		a = f.addLink(FakeLink{Name: v.Name, Kind: "veth", MTU: v.MTU, Peer: v.PeerName})
		b = f.addLink(FakeLink{Name: v.PeerName, Kind: "veth", MTU: v.MTU, Peer: v.Name})
		ch = append(ch, vethCreated(v))
	}
	ch = append(ch, f.basics(a, Alias, v.MTU, "")...)
	ch = append(ch, f.basics(b, Alias, v.MTU, v.Master)...)
	if v.DisableOffloads {
		for _, l := range []*FakeLink{a, b} {
			if !l.OffloadsOff {
				l.OffloadsOff = true
				for _, o := range vethOffloadsOn {
					ch = append(ch, fmt.Sprintf("%s: %s off", l.Name, o))
				}
			}
		}
	}
	return ch, nil
}

// vethOffloadsOn are the offloads of the ethtool table (offloads) that a new veth has on and
// Host turns off, in its order: GRO is off on a veth by default, and TSO goes off with TX
// checksumming, before its turn comes.
var vethOffloadsOn = []string{"rx-checksum", "tx-checksum", "gso"}

// EnsureRoute follows Interface.EnsureRoute: a route to r.Dst that is not ovsmesh's
// (neither through r.Dev nor of RouteProtocol) is a *ConflictError and nothing changes; a
// right route of ovsmesh's is kept, a wrong one replaced in place, extra ones removed.
func (f *Fake) EnsureRoute(r Route) ([]string, error) {
	if err := f.begin("EnsureRoute", r); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if f.Links[r.Dev] == nil {
		return nil, fmt.Errorf("route device %s: %w", r.Dev, errNoLink(r.Dev))
	}
	own := func(e FakeRoute) bool { return e.Protocol == RouteProtocol || e.Dev == r.Dev }
	right := func(e FakeRoute) bool {
		return e.Dst == r.Dst && e.Dev == r.Dev && e.Protocol == RouteProtocol && e.Metric == 0
	}
	for _, e := range f.Routes {
		if e.Dst == r.Dst && !own(e) {
			return nil, &ConflictError{Link: "route " + r.Dst.String(), What: fmt.Sprintf("the host already has %s, which ovsmesh did not create; ovsmesh will not replace or delete it: remove it or choose another clusterCIDR", e)}
		}
	}
	var ch []string
	if !slices.ContainsFunc(f.Routes, right) {
		// RTM_NEWROUTE with NLM_F_REPLACE: the route of the same prefix and metric, if any,
		// is replaced in place.
		want := FakeRoute{Dst: r.Dst, Dev: r.Dev, Protocol: RouteProtocol}
		if i := slices.IndexFunc(f.Routes, func(e FakeRoute) bool { return e.Dst == r.Dst && e.Metric == 0 }); i >= 0 {
			f.Routes[i] = want
		} else {
			f.Routes = append(f.Routes, want)
		}
		ch = append(ch, fmt.Sprintf("route %s dev %s: set", r.Dst, r.Dev))
	}
	var keep []FakeRoute
	for _, e := range f.Routes {
		if e.Dst == r.Dst && !right(e) && own(e) {
			ch = append(ch, fmt.Sprintf("route %s: removed extra %s", r.Dst, e))
			continue
		}
		keep = append(keep, e)
	}
	f.Routes = keep
	return ch, nil
}

// EnsureMasquerade follows Interface.EnsureMasquerade: the table holds exactly m's rule
// when m.Enabled (replaced whole when it differs), and is absent when not.
func (f *Fake) EnsureMasquerade(m Masquerade) ([]string, error) {
	if err := f.begin("EnsureMasquerade", m); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	return f.ensureMasquerade(m), nil
}

func (f *Fake) ensureMasquerade(m Masquerade) []string {
	switch {
	case !m.Enabled && f.Masquerade == nil:
		return nil
	case !m.Enabled:
		f.Masquerade = nil
		return []string{fmt.Sprintf("nftables: deleted table ip %s (masquerade disabled)", NFTTable)}
	case f.Masquerade != nil && *f.Masquerade == m:
		return nil
	}
	verb := "created"
	if f.Masquerade != nil {
		verb = "replaced"
	}
	f.Masquerade = &m
	return []string{fmt.Sprintf("nftables: %s table ip %s (%s)", verb, NFTTable, masqComment(m))}
}

// LinkIndex follows Interface.LinkIndex: the ifindex, 0 for no such link.
func (f *Fake) LinkIndex(name string) (int, error) {
	if err := f.begin("LinkIndex", name); err != nil {
		return 0, err
	}
	defer f.mu.Unlock()
	if l := f.Links[name]; l != nil {
		return l.Index, nil
	}
	return 0, nil
}

// Cleanup follows Interface.Cleanup: the masquerade table, the marked veth, and the route
// and bridge when ovsmesh created it; an adopted bridge only loses the route, its gateway
// addresses and the mark. Missing objects are no error; sysctls are left alone.
func (f *Fake) Cleanup(n Names) ([]string, error) {
	if err := f.begin("Cleanup", n); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	ch := f.ensureMasquerade(Masquerade{Enabled: false})
	for _, name := range []string{n.Veth, n.VethPeer} {
		l := f.Links[name]
		if name == "" || l == nil || l.Kind != "veth" {
			continue
		}
		if !f.vethMarked(l) {
			ch = append(ch, fmt.Sprintf("%s: left alone (a veth ovsmesh did not create)", name))
			continue
		}
		f.deleteLink(l)
		ch = append(ch, fmt.Sprintf("%s: deleted veth", name))
	}
	if n.Bridge == "" {
		return ch, nil
	}
	l := f.Links[n.Bridge]
	deleteRoute := func() {
		if n.RouteDst.IsValid() {
			f.Routes = slices.DeleteFunc(f.Routes, func(r FakeRoute) bool { return r.Dst == n.RouteDst && r.Dev == n.Bridge })
		}
	}
	switch {
	case l == nil:
	case l.Kind != "bridge" || !owned(l.Alias):
		ch = append(ch, fmt.Sprintf("%s: left alone (not created or adopted by ovsmesh)", n.Bridge))
	case l.Alias == AliasAdopted:
		deleteRoute()
		if n.RouteDst.IsValid() {
			var keep []netip.Prefix
			for _, a := range l.Addrs {
				if n.RouteDst.Contains(a.Addr()) {
					ch = append(ch, fmt.Sprintf("%s: removed address %s", n.Bridge, a))
					continue
				}
				keep = append(keep, a)
			}
			l.Addrs = keep
		}
		l.Alias = ""
		ch = append(ch, fmt.Sprintf("%s: kept (adopted, not created by ovsmesh); mark removed", n.Bridge))
	default:
		deleteRoute()
		if n.RouteDst.IsValid() {
			ch = append(ch, fmt.Sprintf("route %s dev %s: deleted", n.RouteDst, n.Bridge))
		}
		f.deleteLink(l)
		ch = append(ch, fmt.Sprintf("%s: deleted bridge", n.Bridge))
	}
	return ch, nil
}
