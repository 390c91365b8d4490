package hostnet

import (
	"errors"
	"fmt"

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
	want := &netlink.Route{
		LinkIndex: dev.Attrs().Index,
		Dst:       ipNet(r.Dst),
		Scope:     netlink.SCOPE_LINK,
		Table:     unix.RT_TABLE_MAIN,
	}
	var ch []string
	keep := -1
	for i, e := range existing {
		if e.LinkIndex == want.LinkIndex && e.Gw == nil && e.Scope == netlink.SCOPE_LINK && e.Priority == 0 && len(e.MultiPath) == 0 {
			keep = i
			break
		}
	}
	if keep < 0 {
		if err := h.nl.RouteReplace(want); err != nil {
			return nil, fmt.Errorf("route %s dev %s: %w", r.Dst, r.Dev, err)
		}
		ch = append(ch, fmt.Sprintf("route %s dev %s: set", r.Dst, r.Dev))
		if existing, err = h.routesTo(r); err != nil {
			return ch, err
		}
	}
	// Anything else to the same destination (another metric, another device) would shadow
	// or compete with ours.
	for _, e := range existing {
		if e.LinkIndex == want.LinkIndex && e.Gw == nil && e.Priority == 0 && len(e.MultiPath) == 0 {
			continue
		}
		e := e
		if err := h.nl.RouteDel(&e); err != nil && !errors.Is(err, unix.ESRCH) {
			return ch, fmt.Errorf("removing competing route %s: %w", e, err)
		}
		ch = append(ch, fmt.Sprintf("route %s: removed competing %s", r.Dst, e))
	}
	return ch, nil
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
