package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

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
	created := link == nil
	if created {
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
	alias := link.Attrs().Alias
	if created {
		alias = Alias
	} else if !owned(alias) {
		// Someone else's bridge: taken over only while nothing uses it.
		ports, err := h.portsOf(link)
		if err != nil {
			return ch, err
		}
		if len(ports) > 0 {
			return ch, &ConflictError{Link: b.Name, What: fmt.Sprintf("is a bridge ovsmesh did not create and it has ports (%s); ovsmesh adopts only an empty bridge: remove the ports or choose another bridges.linux name", strings.Join(ports, ", "))}
		}
		alias = AliasAdopted
	}

	// Addresses first: a conflict must leave the bridge entirely untouched.
	addrs, err := h.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return ch, fmt.Errorf("addresses of %s: %w", b.Name, err)
	}
	has := false
	var stale []netlink.Addr
	for _, a := range addrs {
		p := prefixOf(a.IPNet)
		if p == b.Address {
			has = true
			continue
		}
		if owned(link.Attrs().Alias) && b.ClusterCIDR.IsValid() && b.ClusterCIDR.Contains(p.Addr()) {
			stale = append(stale, a)
			continue
		}
		return ch, &ConflictError{Link: b.Name, What: fmt.Sprintf("already has address %s, want %s; ovsmesh will not take over a bridge configured for something else", p, b.Address)}
	}

	c, err := h.ensureLinkBasics(link, alias, b.MTU, "", 0)
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
	// After the new gateway is in place, so the bridge is never without one.
	for _, a := range stale {
		if err := h.nl.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return ch, fmt.Errorf("removing the earlier gateway %s from %s: %w", prefixOf(a.IPNet), b.Name, err)
		}
		ch = append(ch, fmt.Sprintf("%s: removed earlier gateway %s", b.Name, prefixOf(a.IPNet)))
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
			if l != nil && !h.vethMarked(l) {
				return nil, &ConflictError{Link: l.Attrs().Name, What: fmt.Sprintf("is a veth ovsmesh did not create (peer %s, no %q alias); ovsmesh will not delete it: remove it or choose other bridge names", h.peerName(l), Alias)}
			}
		}
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
	c, err := h.ensureLinkBasics(a, Alias, v.MTU, "", 0)
	ch = append(ch, c...)
	if err != nil {
		return ch, err
	}
	c, err = h.ensureLinkBasics(b, Alias, v.MTU, v.Master, master.Attrs().Index)
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
func (h *Host) ensureLinkBasics(l netlink.Link, alias string, mtu int, masterName string, masterIndex int) ([]string, error) {
	var ch []string
	at := l.Attrs()
	if at.Alias != alias {
		if err := h.nl.LinkSetAlias(l, alias); err != nil {
			return ch, fmt.Errorf("alias of %s: %w", at.Name, err)
		}
		ch = append(ch, fmt.Sprintf("%s: alias %q", at.Name, alias))
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

// portsOf returns the names of the links enslaved to the bridge br.
func (h *Host) portsOf(br netlink.Link) ([]string, error) {
	all, err := h.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	var ports []string
	for _, l := range all {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports, nil
}

// vethMarked reports whether the veth l or its peer carries ovsmesh's mark. The pair is
// created with the mark on one end and the other gets it right after; a crash in between
// leaves a pair that is still recognisably ovsmesh's.
func (h *Host) vethMarked(l netlink.Link) bool {
	if owned(l.Attrs().Alias) {
		return true
	}
	p, err := h.nl.LinkByIndex(l.Attrs().ParentIndex)
	// The peer index may name a link in another namespace; it is our peer only if it points back.
	return err == nil && p.Type() == "veth" && p.Attrs().ParentIndex == l.Attrs().Index && owned(p.Attrs().Alias)
}

// peerName names the peer of the veth l, for messages.
func (h *Host) peerName(l netlink.Link) string {
	if p, err := h.nl.LinkByIndex(l.Attrs().ParentIndex); err == nil {
		return p.Attrs().Name
	}
	return "unknown"
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
