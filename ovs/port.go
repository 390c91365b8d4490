package ovs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	ovsmodel "github.com/ovsmesh/ovsmesh/ovs/model"
)

// Interface types for EnsurePortOps.
const (
	PortSystem   = ""         // an existing network device (a veth end), "system" is accepted too
	PortInternal = "internal" // a device OVS creates
)

// OwnedPort is a port ovsmesh made (external_ids:ovsmesh.io/owner=ovsmesh) as found in
// the cache.
type OwnedPort struct {
	Name string
	UUID string
	// InterfaceType is the type of the port's interface ("" system, "internal", "gre",
	// "vxlan"); empty also when the port does not have exactly one interface.
	InterfaceType string
	// Peer is external_ids:ovsmesh.io/tunnel-peer: set for tunnels, empty otherwise.
	Peer string
	// Options are the interface's options (remote_ip, key, ...).
	Options map[string]string
	// ExternalIDs of the port.
	ExternalIDs map[string]string
}

// EnsurePortOps appends to ops the operations that add a port with one interface of
// that name to the bridge, none when the bridge already has it with that type. ovs-vsctl
// equivalent:
//
//	ovs-vsctl --may-exist add-port obr0 vobr0 [-- set Interface vobr0 type=internal] \
//	    -- set Port vobr0 external_ids:ovsmesh.io/owner=ovsmesh
//
// ifaceType is "" (or "system") for an existing device or "internal". The bridge must
// exist and be ovsmesh's: in the cache, or inserted by EnsureBridgeOps earlier in ops
// (the port then joins it by its uuid-name, in the same transaction). A port of that name
// that ovsmesh owns gets its interface type corrected; one it does not own is accepted as
// it is when its type matches and is an ErrNotOwned error otherwise; a port or interface
// of that name elsewhere is an error. On error ops is returned as given.
func (c *Client) EnsurePortOps(ctx context.Context, ops []ovsdb.Operation, bridge, name, ifaceType string) ([]ovsdb.Operation, error) {
	if ifaceType == "system" {
		ifaceType = PortSystem
	}
	if ifaceType != PortSystem && ifaceType != PortInternal {
		return ops, fmt.Errorf("ovs: port %s: interface type %q is not system or internal (tunnels are made by SyncTunnelsOps)", name, ifaceType)
	}
	if err := validIfName(name); err != nil {
		return ops, fmt.Errorf("ovs: port name: %w", err)
	}
	v, err := c.openBridge(ctx, ops, bridge, mustOwn|bridgePorts)
	if err != nil {
		return ops, err
	}
	if p, ok := v.Ports[name]; ok {
		iface := p.iface()
		if iface != nil && iface.Name == name && iface.Type == ifaceType {
			return ops, nil
		}
		if !owned(p.Port.ExternalIDs) || iface == nil {
			return ops, fmt.Errorf("ovs: port %s on %s exists with another configuration: %w", name, bridge, ErrNotOwned)
		}
		want := &ovsmodel.Interface{UUID: iface.UUID, Type: ifaceType}
		up, err := c.ovs.Where(want).Update(want, &want.Type)
		if err != nil {
			return ops, fmt.Errorf("ovs: update interface %s: %w", name, err)
		}
		return append(ops, up...), nil
	}
	taken, err := v.nameTaken(ctx, c, name)
	if err != nil {
		return ops, err
	}
	if taken {
		return ops, fmt.Errorf("ovs: port %s: a port or interface of that name exists on another bridge", name)
	}
	iface := &ovsmodel.Interface{UUID: c.namedUUID("iface"), Name: name, Type: ifaceType, ExternalIDs: ownerTags()}
	port := &ovsmodel.Port{UUID: c.namedUUID("port"), Name: name, Interfaces: []string{iface.UUID}, ExternalIDs: ownerTags()}
	add, err := c.addPortsOps(v.Br, []*ovsmodel.Interface{iface}, []*ovsmodel.Port{port}, nil)
	if err != nil {
		return ops, err
	}
	return append(ops, add...), nil
}

// addPortsOps inserts interfaces and ports and changes the bridge's port set in one
// mutation: remove first, then add. Mutating (not overwriting) Bridge.ports leaves ports
// others added concurrently in place.
func (c *Client) addPortsOps(br *ovsmodel.Bridge, ifaces []*ovsmodel.Interface, ports []*ovsmodel.Port, remove []string) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for i := range ports {
		for _, m := range []model.Model{ifaces[i], ports[i]} {
			op, err := c.ovs.Create(m)
			if err != nil {
				return nil, fmt.Errorf("ovs: create port %s: %w", ports[i].Name, err)
			}
			ops = append(ops, op...)
		}
	}
	target := &ovsmodel.Bridge{UUID: br.UUID}
	var mut []model.Mutation
	if len(remove) > 0 {
		mut = append(mut, model.Mutation{Field: &target.Ports, Mutator: ovsdb.MutateOperationDelete, Value: remove})
	}
	if len(ports) > 0 {
		add := make([]string, len(ports))
		for i, p := range ports {
			add[i] = p.UUID
		}
		mut = append(mut, model.Mutation{Field: &target.Ports, Mutator: ovsdb.MutateOperationInsert, Value: add})
	}
	if len(mut) == 0 {
		return ops, nil
	}
	m, err := c.ovs.Where(target).Mutate(target, mut...)
	if err != nil {
		return nil, fmt.Errorf("ovs: mutate ports of bridge %s: %w", br.Name, err)
	}
	return append(ops, m...), nil
}

// DeletePortOps appends to ops the operation that removes an ovsmesh port from the
// bridge, none when the bridge or the port does not exist. ovs-vsctl equivalent:
//
//	ovs-vsctl --if-exists del-port obr0 vobr0
//
// The port leaves Bridge.ports and OVSDB garbage-collects it and its interfaces. A port
// ovsmesh does not own is an ErrNotOwned error. On error ops is returned as given.
func (c *Client) DeletePortOps(ctx context.Context, ops []ovsdb.Operation, bridge, name string) ([]ovsdb.Operation, error) {
	v, err := c.openBridge(ctx, ops, bridge, anyBridge|bridgePorts)
	if err != nil || v.Br == nil {
		return ops, err
	}
	p, ok := v.Ports[name]
	if !ok {
		return ops, nil
	}
	if !owned(p.Port.ExternalIDs) {
		return ops, fmt.Errorf("ovs: delete port %s on %s: %w", name, bridge, ErrNotOwned)
	}
	del, err := c.addPortsOps(v.Br, nil, nil, []string{p.Port.UUID})
	if err != nil {
		return ops, err
	}
	return append(ops, del...), nil
}

// OwnedPorts lists the ports on the bridge that ovsmesh owns (tunnels and others),
// sorted by name; none when the bridge does not exist. ovs-vsctl equivalent:
//
//	ovs-vsctl --columns=name,external_ids find Port external_ids:ovsmesh.io/owner=ovsmesh
//
// restricted to the bridge's ports.
func (c *Client) OwnedPorts(ctx context.Context, bridge string) ([]OwnedPort, error) {
	v, err := c.openBridge(ctx, nil, bridge, anyBridge|bridgePorts)
	if err != nil || v.Br == nil {
		return nil, err
	}
	var out []OwnedPort
	for _, p := range v.Ports {
		if !owned(p.Port.ExternalIDs) {
			continue
		}
		op := OwnedPort{Name: p.Port.Name, UUID: p.Port.UUID, Peer: p.Port.ExternalIDs[TunnelPeerKey],
			ExternalIDs: maps.Clone(p.Port.ExternalIDs)}
		if i := p.iface(); i != nil {
			op.InterfaceType, op.Options = i.Type, maps.Clone(i.Options)
		}
		out = append(out, op)
	}
	slices.SortFunc(out, func(a, b OwnedPort) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
