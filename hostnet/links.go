package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovsmesh/ovsmesh/internal/ipmac"
)

// LinkIndex implements Interface.
func (h *Host) LinkIndex(name string) (int, error) {
	l, err := h.linkByName(name)
	if err != nil || l == nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// FindUnderlay implements Interface.
func (h *Host) FindUnderlay(name string, addr netip.Addr) (Underlay, error) {
	if name != "" {
		l, err := h.nl.LinkByName(name)
		if err != nil {
			return Underlay{}, fmt.Errorf("underlay interface %s: %w", name, err)
		}
		return Underlay{Name: name, MTU: l.Attrs().MTU, Addr: addr}, nil
	}
	addrs, err := h.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return Underlay{}, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			l, err := h.nl.LinkByIndex(a.LinkIndex)
			if err != nil {
				return Underlay{}, fmt.Errorf("link of %s: %w", addr, err)
			}
			return Underlay{Name: l.Attrs().Name, MTU: l.Attrs().MTU, Addr: addr}, nil
		}
	}
	return Underlay{}, fmt.Errorf("%w %s", ErrNoUnderlay, addr)
}

// EnsureBridge implements Interface.
func (h *Host) EnsureBridge(b Bridge) ([]string, error) {
	var ch []string
	link, err := h.linkByName(b.Name)
	if err != nil {
		return nil, err
	}
	if link == nil {
		// A fixed MAC derived from the gateway address (see ipmac): without one a Linux bridge
		// takes the lowest MAC of its ports, which changes as pods come and go and leaves
		// stale entries in the pods' ARP caches.
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.Name, MTU: b.MTU, HardwareAddr: ipmac.FromIPv4(b.Address.Addr())}}
		if err := h.nl.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("creating bridge %s: %w", b.Name, err)
		}
		ch = append(ch, fmt.Sprintf("%s: created bridge", b.Name))
		if link, err = h.nl.LinkByName(b.Name); err != nil {
			return ch, err
		}
	} else if link.Type() != "bridge" {
		return nil, &ConflictError{Link: b.Name, What: fmt.Sprintf("exists as a %s link, not a bridge; remove it or choose another bridges.linux name", link.Type())}
	}

	// Addresses first: a conflict must leave the bridge entirely untouched.
	addrs, err := h.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return ch, fmt.Errorf("addresses of %s: %w", b.Name, err)
	}
	has := false
	for _, a := range addrs {
		p := prefixOf(a.IPNet)
		if p == b.Address {
			has = true
			continue
		}
		return ch, &ConflictError{Link: b.Name, What: fmt.Sprintf("already has address %s, want %s; ovsmesh will not take over a bridge configured for something else", p, b.Address)}
	}

	c, err := h.ensureLinkBasics(link, b.MTU, "", 0)
	ch = append(ch, c...)
	if err != nil {
		return ch, err
	}
	if !has {
		a := &netlink.Addr{IPNet: ipNet(b.Address)}
		if err := h.nl.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return ch, fmt.Errorf("adding %s to %s: %w", b.Address, b.Name, err)
		}
		ch = append(ch, fmt.Sprintf("%s: added address %s", b.Name, b.Address))
	}
	return ch, nil
}

// EnsureVethPair implements Interface.
func (h *Host) EnsureVethPair(v VethPair) ([]string, error) {
	var ch []string
	master, err := h.nl.LinkByName(v.Master)
	if err != nil {
		return nil, fmt.Errorf("veth master %s: %w", v.Master, err)
	}
	a, err := h.linkByName(v.Name)
	if err != nil {
		return nil, err
	}
	b, err := h.linkByName(v.PeerName)
	if err != nil {
		return nil, err
	}
	for _, l := range []netlink.Link{a, b} {
		if l != nil && l.Type() != "veth" {
			return nil, &ConflictError{Link: l.Attrs().Name, What: fmt.Sprintf("exists as a %s link, not a veth", l.Type())}
		}
	}
	paired := a != nil && b != nil && a.Attrs().ParentIndex == b.Attrs().Index && b.Attrs().ParentIndex == a.Attrs().Index
	if !paired {
		for _, l := range []netlink.Link{a, b} {
			if l == nil {
				continue
			}
			if err := h.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				return ch, fmt.Errorf("removing stray veth %s: %w", l.Attrs().Name, err)
			}
			ch = append(ch, fmt.Sprintf("%s: removed stray veth (peer was not %s)", l.Attrs().Name, otherName(l, v)))
		}
		veth := &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: v.Name, MTU: v.MTU, Alias: Alias},
			PeerName:  v.PeerName,
		}
		if err := h.nl.LinkAdd(veth); err != nil {
			return ch, fmt.Errorf("creating veth %s/%s: %w", v.Name, v.PeerName, err)
		}
		ch = append(ch, vethCreated(v))
		if a, err = h.nl.LinkByName(v.Name); err != nil {
			return ch, err
		}
		if b, err = h.nl.LinkByName(v.PeerName); err != nil {
			return ch, err
		}
	}
	c, err := h.ensureLinkBasics(a, v.MTU, "", 0)
	ch = append(ch, c...)
	if err != nil {
		return ch, err
	}
	c, err = h.ensureLinkBasics(b, v.MTU, v.Master, master.Attrs().Index)
	ch = append(ch, c...)
	if err != nil {
		return ch, err
	}
	if v.DisableOffloads {
		for _, name := range []string{v.Name, v.PeerName} {
			c, err := h.offloadsOff(name)
			ch = append(ch, c...)
			if err != nil {
				return ch, err
			}
		}
	}
	return ch, nil
}

// ensureLinkBasics fixes alias, MTU, master (when masterIndex != 0) and up state in place.
func (h *Host) ensureLinkBasics(l netlink.Link, mtu int, masterName string, masterIndex int) ([]string, error) {
	var ch []string
	at := l.Attrs()
	if at.Alias != Alias {
		if err := h.nl.LinkSetAlias(l, Alias); err != nil {
			return ch, fmt.Errorf("alias of %s: %w", at.Name, err)
		}
		ch = append(ch, fmt.Sprintf("%s: alias %q", at.Name, Alias))
	}
	if mtu != 0 && at.MTU != mtu {
		if err := h.nl.LinkSetMTU(l, mtu); err != nil {
			return ch, fmt.Errorf("MTU of %s: %w", at.Name, err)
		}
		ch = append(ch, fmt.Sprintf("%s: mtu %d -> %d", at.Name, at.MTU, mtu))
	}
	if masterIndex != 0 && at.MasterIndex != masterIndex {
		if err := h.nl.LinkSetMasterByIndex(l, masterIndex); err != nil {
			return ch, fmt.Errorf("enslaving %s to %s: %w", at.Name, masterName, err)
		}
		ch = append(ch, fmt.Sprintf("%s: master %s", at.Name, masterName))
	}
	if at.Flags&net.FlagUp == 0 {
		if err := h.nl.LinkSetUp(l); err != nil {
			return ch, fmt.Errorf("setting %s up: %w", at.Name, err)
		}
		ch = append(ch, fmt.Sprintf("%s: up", at.Name))
	}
	return ch, nil
}

func vethCreated(v VethPair) string {
	return fmt.Sprintf("%s: created veth pair with %s", v.Name, v.PeerName)
}

// VethCreated reports whether changes (what Apply returned) say the veth pair v was made
// anew: its ifindexes are new, and whatever held the old ends (ovs-vswitchd's userspace
// datapath keeps a socket on the vanished device) must let go and take the new ones.
func VethCreated(changes []string, v VethPair) bool {
	return slices.Contains(changes, vethCreated(v))
}

// linkByName returns nil, nil when the link does not exist.
func (h *Host) linkByName(name string) (netlink.Link, error) {
	l, err := h.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, fmt.Errorf("looking up %s: %w", name, err)
	}
	return l, nil
}

func otherName(l netlink.Link, v VethPair) string {
	if l.Attrs().Name == v.Name {
		return v.PeerName
	}
	return v.Name
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	ip, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
