package hostnet

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Cleanup implements Interface.
func (h *Host) Cleanup(n Names) ([]string, error) {
	var ch []string
	var errs []error

	if c, err := h.EnsureMasquerade(Masquerade{Enabled: false}); err != nil {
		errs = append(errs, err)
	} else {
		ch = append(ch, c...)
	}

	// Deleting one end of a veth deletes both; try both names in case one was renamed away.
	for _, name := range []string{n.Veth, n.VethPeer} {
		if name == "" {
			continue
		}
		l, err := h.linkByName(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l == nil || l.Type() != "veth" {
			continue
		}
		if !h.vethMarked(l) {
			ch = append(ch, fmt.Sprintf("%s: left alone (a veth ovsmesh did not create)", name))
			continue
		}
		if err := h.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", name, err))
			continue
		}
		ch = append(ch, fmt.Sprintf("%s: deleted veth", name))
	}

	if n.Bridge != "" {
		l, err := h.linkByName(n.Bridge)
		switch {
		case err != nil:
			errs = append(errs, err)
		case l == nil:
		case l.Type() != "bridge" || !owned(l.Attrs().Alias):
			ch = append(ch, fmt.Sprintf("%s: left alone (not created or adopted by ovsmesh)", n.Bridge))
		case l.Attrs().Alias == AliasAdopted:
			c, err := h.releaseAdopted(l, n)
			ch = append(ch, c...)
			if err != nil {
				errs = append(errs, err)
			}
		default:
			if err := h.deleteRoute(l, n); err != nil {
				errs = append(errs, err)
			} else if n.RouteDst.IsValid() {
				ch = append(ch, fmt.Sprintf("route %s dev %s: deleted", n.RouteDst, n.Bridge))
			}
			if err := h.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("deleting %s: %w", n.Bridge, err))
			} else {
				ch = append(ch, fmt.Sprintf("%s: deleted bridge", n.Bridge))
			}
		}
	}
	return ch, errors.Join(errs...)
}

// deleteRoute removes the cluster route through the bridge l. The kernel drops it with the
// bridge; deleting it first keeps the order explicit and covers a route left on the bridge
// by hand. A missing route is no error.
func (h *Host) deleteRoute(l netlink.Link, n Names) error {
	if !n.RouteDst.IsValid() {
		return nil
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(n.RouteDst), Table: unix.RT_TABLE_MAIN}
	if err := h.nl.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("deleting route %s: %w", n.RouteDst, err)
	}
	return nil
}

// releaseAdopted gives an adopted bridge back as ovsmesh found it, as far as it knows: the
// route through it and the gateway address (any address inside the cluster CIDR: an adopted
// bridge had no address but the gateway) go, the mark goes, the bridge stays.
func (h *Host) releaseAdopted(l netlink.Link, n Names) ([]string, error) {
	var ch []string
	if err := h.deleteRoute(l, n); err != nil {
		return ch, err
	}
	if n.RouteDst.IsValid() {
		addrs, err := h.nl.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return ch, fmt.Errorf("addresses of %s: %w", n.Bridge, err)
		}
		for _, a := range addrs {
			if !n.RouteDst.Contains(prefixOf(a.IPNet).Addr()) {
				continue
			}
			if err := h.nl.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return ch, fmt.Errorf("removing %s from %s: %w", a.IPNet, n.Bridge, err)
			}
			ch = append(ch, fmt.Sprintf("%s: removed address %s", n.Bridge, prefixOf(a.IPNet)))
		}
	}
	if err := h.nl.LinkSetAlias(l, ""); err != nil {
		return ch, fmt.Errorf("clearing the alias of %s: %w", n.Bridge, err)
	}
	ch = append(ch, fmt.Sprintf("%s: kept (adopted, not created by ovsmesh); mark removed", n.Bridge))
	return ch, nil
}
