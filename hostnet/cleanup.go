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
		case l.Type() != "bridge" || l.Attrs().Alias != Alias:
			ch = append(ch, fmt.Sprintf("%s: left alone (not created or adopted by ovsmesh)", n.Bridge))
		default:
			if n.RouteDst.IsValid() {
				// The kernel drops the route with the bridge; deleting it first keeps the
				// order explicit and covers a route left on the bridge by hand.
				r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(n.RouteDst), Table: unix.RT_TABLE_MAIN}
				if err := h.nl.RouteDel(r); err == nil {
					ch = append(ch, fmt.Sprintf("route %s dev %s: deleted", n.RouteDst, n.Bridge))
				} else if !errors.Is(err, unix.ESRCH) {
					errs = append(errs, fmt.Errorf("deleting route %s: %w", n.RouteDst, err))
				}
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
