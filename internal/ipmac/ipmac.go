// Package ipmac derives a MAC address from an IPv4 address. Both the node's gateway (kbr0)
// and every pod interface use it, so an address always maps to the same MAC: when a subnet
// is released and handed to a new node, its pods reuse the departed pods' addresses, and the
// neighbour entries other nodes still hold stay right instead of pointing at a MAC that no
// longer exists (which took up to ~40 s of PROBE rounds to notice).
package ipmac

import (
	"net"
	"net/netip"
)

// FromIPv4 returns 0a:58:a.b.c.d for a.b.c.d: locally administered, unicast (0x0a has the
// local bit set and the group bit clear), the convention OVN-Kubernetes and OpenShift SDN
// use. It returns nil for anything but an IPv4 address.
func FromIPv4(ip netip.Addr) net.HardwareAddr {
	ip = ip.Unmap()
	if !ip.Is4() {
		return nil
	}
	b := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}
