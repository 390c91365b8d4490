package hostnet

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureRoute implements Interface.
func (h *Host) EnsureRoute(r Route) ([]string, error) {
	dev, err := h.nl.LinkByName(r.Dev)
	if err != nil {
		return nil, fmt.Errorf("route device %s: %w", r.Dev, err)
	}
	existing, err := h.routesTo(r)
	if err != nil {
		return nil, err
	}
	// Someone else's route to the prefix: the host depends on it (a VPN, a provisioning
	// script, another pod network). Replacing it would hijack that traffic; report it and
	// change nothing.
	for _, e := range existing {
		if !ownRoute(e, dev.Attrs().Index) {
			return nil, &ConflictError{Link: "route " + r.Dst.String(), What: fmt.Sprintf("the host already has %s, which ovsmesh did not create; ovsmesh will not replace or delete it: remove it or choose another clusterCIDR", describeRoute(h, e))}
		}
	}
	want := &netlink.Route{
		LinkIndex: dev.Attrs().Index,
		Dst:       ipNet(r.Dst),
		Scope:     netlink.SCOPE_LINK,
		Table:     unix.RT_TABLE_MAIN,
		Protocol:  RouteProtocol,
	}
	var ch []string
	right := func(e netlink.Route) bool {
		return e.LinkIndex == want.LinkIndex && e.Gw == nil && e.Scope == netlink.SCOPE_LINK &&
			e.Priority == 0 && len(e.MultiPath) == 0 && e.Protocol == RouteProtocol
	}
	if !slices.ContainsFunc(existing, right) {
		// Replaces ours in place (same table, prefix and metric: one kernel operation), e.g.
		// one an older agent made without the protocol id.
		if err := h.nl.RouteReplace(want); err != nil {
			return nil, fmt.Errorf("route %s dev %s: %w", r.Dst, r.Dev, err)
		}
		ch = append(ch, fmt.Sprintf("route %s dev %s: set", r.Dst, r.Dev))
		if existing, err = h.routesTo(r); err != nil {
			return ch, err
		}
	}
	// Another of ours to the same destination (another metric) would compete with it.
	for _, e := range existing {
		if right(e) || !ownRoute(e, want.LinkIndex) {
			continue
		}
		if err := h.nl.RouteDel(&e); err != nil && !errors.Is(err, unix.ESRCH) {
			return ch, fmt.Errorf("removing extra route %s: %w", e, err)
		}
		ch = append(ch, fmt.Sprintf("route %s: removed extra %s", r.Dst, e))
	}
	return ch, nil
}

// ownRoute reports whether e is ovsmesh's: through its own bridge (which only ovsmesh
// routes into), or carrying its protocol id.
func ownRoute(e netlink.Route, bridgeIndex int) bool {
	return e.Protocol == RouteProtocol || (e.LinkIndex == bridgeIndex && len(e.MultiPath) == 0)
}

// describeRoute renders e as `ip route` would, roughly: what a person looks for.
func describeRoute(h *Host, e netlink.Route) string {
	s := "route " + e.Dst.String()
	if e.Gw != nil {
		s += " via " + e.Gw.String()
	}
	if e.LinkIndex != 0 {
		if l, err := h.nl.LinkByIndex(e.LinkIndex); err == nil {
			s += " dev " + l.Attrs().Name
		}
	}
	if len(e.MultiPath) > 0 {
		s += fmt.Sprintf(" (%d nexthops)", len(e.MultiPath))
	}
	s += fmt.Sprintf(" proto %s", e.Protocol)
	if e.Priority != 0 {
		s += fmt.Sprintf(" metric %d", e.Priority)
	}
	return s
}

func (h *Host) routesTo(r Route) ([]netlink.Route, error) {
	rs, err := h.nl.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Dst: ipNet(r.Dst), Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing routes to %s: %w", r.Dst, err)
	}
	return rs, nil
}
