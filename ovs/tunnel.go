package ovs

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
)

// Tunnel types.
const (
	TunnelGRE   = "gre"
	TunnelVXLAN = "vxlan"
)

// TunnelSpec is one tunnel of the mesh: a port on the bridge whose single interface
// encapsulates to one peer node.
type TunnelSpec struct {
	// PeerName names the peer (the node name); it is recorded in the port's
	// external_ids:ovsmesh.io/tunnel-peer. Required.
	PeerName string
	// RemoteIP is the peer's underlay address (options:remote_ip). IPv4 or IPv6.
	RemoteIP string
	// Type is "gre" or "vxlan" (case-insensitive, so the API's "GRE"/"VXLAN" work).
	Type string
	// Key is options:key, the GRE key (32 bits) or VXLAN VNI (24 bits); nil leaves it
	// unset (OVS then uses 0).
	Key *int64
	// DstPort is options:dst_port of VXLAN tunnels; 0 leaves OVS's default (4789).
	// GRE has no port and ignores it.
	DstPort int
	// LocalIP is options:local_ip; empty lets OVS choose by route.
	LocalIP string
	// BFD sets bfd:enable=true, so that bfd_status reports whether the peer is alive.
	// Note that RSTP honours it: a tunnel whose peer does not answer BFD gets the RSTP
	// role Disabled and does not forward (OVS 3.1's STP ignores BFD).
	BFD bool
	// Protected makes the port an OVS protected port (Port.protected): a frame that came
	// in on a protected port is never sent out of another protected port of the bridge.
	// With every tunnel of a full mesh protected, no frame ever crosses a node in transit,
	// which keeps the mesh loop-free with spanning tree off (split horizon). A new port is
	// created protected in the same transaction: it never exists unprotected.
	Protected bool
}

// PortName returns the name of the port (and of its interface) for a tunnel: the type,
// a dash and the peer's IPv4 address in hex, e.g. "gre-0af40001" or "vxlan-0af40001" for
// 10.244.0.1. It is stable (derived from the peer's address and the type only), at most
// 12 or 14 characters (within IFNAMSIZ's 15) and collision-free: distinct (type, IPv4)
// pairs give distinct names, and the type prefix keeps GRE and VXLAN ports apart so that
// a type change replaces ports instead of renaming them.
//
// IPv6 addresses do not fit in 15 characters; they are hashed (FNV-1a): "gre6-" and 10
// hex digits (40 bits) or "vxlan6-" and 8 (32 bits). SyncTunnels rejects a desired set in
// which two peers hash to the same name, so a collision is reported, never merged.
//
// PortName returns "" for a spec with an unknown type or an unparsable RemoteIP.
func PortName(spec TunnelSpec) string {
	typ := strings.ToLower(spec.Type)
	if typ != TunnelGRE && typ != TunnelVXLAN {
		return ""
	}
	addr, err := netip.ParseAddr(spec.RemoteIP)
	if err != nil {
		return ""
	}
	addr = addr.Unmap()
	if addr.Is4() {
		a := addr.As4()
		return typ + "-" + hex.EncodeToString(a[:])
	}
	h := fnv.New64a()
	a := addr.As16()
	h.Write(a[:])
	sum := hex.EncodeToString(h.Sum(nil))
	if typ == TunnelGRE {
		return "gre6-" + sum[:10]
	}
	return "vxlan6-" + sum[:8]
}

// validateTunnel checks a spec before anything is written.
func validateTunnel(s TunnelSpec) error {
	typ := strings.ToLower(s.Type)
	if typ != TunnelGRE && typ != TunnelVXLAN {
		return fmt.Errorf("tunnel to %q: type %q is not gre or vxlan", s.PeerName, s.Type)
	}
	if s.PeerName == "" {
		return fmt.Errorf("tunnel to %s: PeerName is empty", s.RemoteIP)
	}
	remote, err := tunnelAddr(s.RemoteIP)
	if err != nil {
		return fmt.Errorf("tunnel to %q: RemoteIP: %w", s.PeerName, err)
	}
	if s.LocalIP != "" {
		local, err := tunnelAddr(s.LocalIP)
		if err != nil {
			return fmt.Errorf("tunnel to %q: LocalIP: %w", s.PeerName, err)
		}
		if local.Is4() != remote.Is4() {
			return fmt.Errorf("tunnel to %q: LocalIP %s and RemoteIP %s are of different families", s.PeerName, s.LocalIP, s.RemoteIP)
		}
	}
	if s.Key != nil {
		max := int64(1<<32 - 1)
		if typ == TunnelVXLAN {
			max = 1<<24 - 1
		}
		if *s.Key < 0 || *s.Key > max {
			return fmt.Errorf("tunnel to %q: %s key %d out of range 0-%d", s.PeerName, typ, *s.Key, max)
		}
	}
	if s.DstPort < 0 || s.DstPort > 65535 {
		return fmt.Errorf("tunnel to %q: DstPort %d out of range 0-65535", s.PeerName, s.DstPort)
	}
	return nil
}

func tunnelAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, err
	}
	if a.Zone() != "" {
		return a, fmt.Errorf("%s: zones are not supported", s)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return a, fmt.Errorf("%s is not a unicast address", s)
	}
	return a, nil
}

// tunnelConfig is what a TunnelSpec means for the Port and Interface rows.
type tunnelConfig struct {
	Name    string
	Peer    string
	Type    string            // Interface.type
	Options map[string]string // Interface.options, complete
	BFD     map[string]string // Interface.bfd, complete
	// Protected is Port.protected.
	Protected bool
}

// configFor translates a validated spec. Addresses are written in canonical form so
// that the comparison with what is in the database is exact.
func configFor(s TunnelSpec) tunnelConfig {
	typ := strings.ToLower(s.Type)
	remote, _ := tunnelAddr(s.RemoteIP)
	opts := map[string]string{"remote_ip": remote.String()}
	if s.Key != nil {
		opts["key"] = strconv.FormatInt(*s.Key, 10)
	}
	if typ == TunnelVXLAN && s.DstPort != 0 {
		opts["dst_port"] = strconv.Itoa(s.DstPort)
	}
	if s.LocalIP != "" {
		local, _ := tunnelAddr(s.LocalIP)
		opts["local_ip"] = local.String()
	}
	bfd := map[string]string{}
	if s.BFD {
		bfd["enable"] = "true"
	}
	return tunnelConfig{Name: PortName(s), Peer: s.PeerName, Type: typ, Options: opts, BFD: bfd, Protected: s.Protected}
}
