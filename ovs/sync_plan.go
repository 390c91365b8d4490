package ovs

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	ovsmodel "github.com/ovsmesh/ovsmesh/ovs/model"
)

// haveTunnel is a tunnel port ovsmesh owns on the bridge, as found in the cache.
type haveTunnel struct {
	PortUUID        string
	Name            string
	PortExternalIDs map[string]string
	PortProtected   bool
	// Iface is the port's interface, nil when the port does not have exactly one
	// interface of its own name (never made by ovsmesh; such a port is replaced).
	Iface *ovsmodel.Interface
}

// tunnelUpdate is an owned tunnel port whose rows differ from what is wanted.
type tunnelUpdate struct {
	Want tunnelConfig
	Have haveTunnel
	// IfaceColumns of the interface to overwrite: type, options, bfd.
	IfaceColumns []string
	// PeerTag is set when external_ids:ovsmesh.io/tunnel-peer must change (on the port,
	// the interface, or both).
	PortPeerTag, IfacePeerTag bool
	// Protected is set when Port.protected must change.
	Protected bool
}

// tunnelPlan is the difference between the desired tunnels and the owned ones.
type tunnelPlan struct {
	Add    []tunnelConfig
	Update []tunnelUpdate
	Remove []haveTunnel
	// Conflicts are desired port names held by a port or interface ovsmesh does not
	// manage as a tunnel of this bridge; those tunnels are left out.
	Conflicts []string
}

func (p tunnelPlan) empty() bool {
	return len(p.Add) == 0 && len(p.Update) == 0 && len(p.Remove) == 0
}

// planTunnels compares desired tunnels with the owned tunnel ports of a bridge (by
// name). taken reports whether a name not among have is used by any other port or
// interface. Everything not in have is never touched. A pure function apart from taken.
func planTunnels(desired []TunnelSpec, have map[string]haveTunnel, taken func(name string) (bool, error)) (tunnelPlan, error) {
	var plan tunnelPlan
	want := make(map[string]tunnelConfig, len(desired))
	for _, s := range desired {
		if err := validateTunnel(s); err != nil {
			return plan, err
		}
		cfg := configFor(s)
		if prev, dup := want[cfg.Name]; dup {
			return plan, fmt.Errorf("tunnels to %q and %q both map to port %s (same type and remote IP, or an IPv6 hash collision)",
				prev.Peer, cfg.Peer, cfg.Name)
		}
		want[cfg.Name] = cfg
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		cfg := want[name]
		h, ok := have[name]
		switch {
		case !ok:
			t, err := taken(name)
			if err != nil {
				return plan, err
			}
			if t {
				plan.Conflicts = append(plan.Conflicts, name)
				continue
			}
			plan.Add = append(plan.Add, cfg)
		case h.Iface == nil:
			plan.Remove = append(plan.Remove, h)
			plan.Add = append(plan.Add, cfg)
		default:
			if u, changed := diffTunnel(cfg, h); changed {
				plan.Update = append(plan.Update, u)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[name]; !ok {
			plan.Remove = append(plan.Remove, have[name])
		}
	}
	return plan, nil
}

func diffTunnel(want tunnelConfig, h haveTunnel) (tunnelUpdate, bool) {
	u := tunnelUpdate{Want: want, Have: h}
	if h.Iface.Type != want.Type {
		u.IfaceColumns = append(u.IfaceColumns, "type")
	}
	if !maps.Equal(nonNil(h.Iface.Options), want.Options) {
		u.IfaceColumns = append(u.IfaceColumns, "options")
	}
	if !maps.Equal(nonNil(h.Iface.BFD), want.BFD) {
		u.IfaceColumns = append(u.IfaceColumns, "bfd")
	}
	u.PortPeerTag = h.PortExternalIDs[TunnelPeerKey] != want.Peer
	u.IfacePeerTag = h.Iface.ExternalIDs[TunnelPeerKey] != want.Peer || !owned(h.Iface.ExternalIDs)
	u.Protected = h.PortProtected != want.Protected
	return u, len(u.IfaceColumns) > 0 || u.PortPeerTag || u.IfacePeerTag || u.Protected
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// tunnelTags are the external_ids of a tunnel's port and interface.
func tunnelTags(peer string) map[string]string {
	return map[string]string{OwnerKey: OwnerValue, TunnelPeerKey: peer}
}

// haveTunnels picks the owned tunnel ports out of a bridge's ports.
func haveTunnels(ports map[string]portRow) map[string]haveTunnel {
	out := map[string]haveTunnel{}
	for name, p := range ports {
		if !owned(p.Port.ExternalIDs) {
			continue
		}
		if _, isTunnel := p.Port.ExternalIDs[TunnelPeerKey]; !isTunnel {
			continue
		}
		h := haveTunnel{PortUUID: p.Port.UUID, Name: name, PortExternalIDs: p.Port.ExternalIDs, PortProtected: p.Port.Protected}
		if i := p.iface(); i != nil && i.Name == name {
			h.Iface = i
		}
		out[name] = h
	}
	return out
}

func joinNames(names []string) string { return strings.Join(names, ", ") }
