package ovs

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	ovsmodel "github.com/ovsmesh/ovsmesh/ovs/model"
)

// SyncResult says what SyncTunnelsOps plans and SyncTunnels changed.
type SyncResult struct {
	// Added, Updated and Deleted count tunnel ports. A type change (gre to vxlan)
	// counts as one deleted and one added port per peer.
	Added, Updated, Deleted int
	// Ops is the number of operations SyncTunnelsOps appended, or SyncTunnels committed in
	// its one transaction; 0 when everything already matched (and nothing was sent).
	Ops int
	// Conflicts are desired port names that a port or interface ovsmesh does not own
	// already uses; those tunnels were not made (see Err).
	Conflicts []string

	bridge string
}

// Err is the error for the Conflicts, nil when there are none: it names them and wraps
// ErrNotOwned. SyncTunnels returns it after committing the other changes; a caller of
// SyncTunnelsOps reports it after its own commit.
func (r SyncResult) Err() error {
	if len(r.Conflicts) == 0 {
		return nil
	}
	return fmt.Errorf("ovs: sync tunnels on %s: ports %s exist and are not ovsmesh tunnels of this bridge, left out: %w",
		r.bridge, joinNames(r.Conflicts), ErrNotOwned)
}

// SyncTunnelsOps appends to ops the operations that make the tunnel ports on an ovsmesh
// bridge exactly the desired set: it adds missing tunnels, corrects owned tunnels whose
// type, options, BFD, protection or peer tag differ, and deletes owned tunnels that are
// no longer desired. ovs-vsctl equivalent, per peer, all in one invocation:
//
//	ovs-vsctl -- --may-exist add-port obr0 vxlan-0af40002 \
//	    -- set Interface vxlan-0af40002 type=vxlan options:remote_ip=10.244.0.2 \
//	       options:key=42 options:dst_port=4789 [bfd:enable=true] \
//	       external_ids:ovsmesh.io/owner=ovsmesh external_ids:ovsmesh.io/tunnel-peer=node2 \
//	    -- set Port vxlan-0af40002 external_ids:ovsmesh.io/owner=ovsmesh \
//	       external_ids:ovsmesh.io/tunnel-peer=node2 [protected=true] \
//	    -- --if-exists del-port obr0 gre-0af40002 ...
//
// Port names come from PortName. It only ever touches ports that carry both
// external_ids:ovsmesh.io/owner=ovsmesh and ovsmesh.io/tunnel-peer on this bridge: a
// user's ports, ovsmesh's non-tunnel ports and other bridges stay as they are. When a
// desired name is held by a port or interface it must not touch, the other changes are
// still appended, SyncResult.Conflicts names it and SyncResult.Err reports it; the error
// return is nil then.
//
// It is idempotent: when the bridge already matches, nothing is appended and Ops is 0.
// The bridge must exist and be ovsmesh's (ErrNoBridge, ErrNotOwned otherwise), in the
// cache or inserted by EnsureBridgeOps earlier in ops. An invalid spec is an error and
// appends nothing; on error ops is returned as given.
func (c *Client) SyncTunnelsOps(ctx context.Context, ops []ovsdb.Operation, bridge string, desired []TunnelSpec) ([]ovsdb.Operation, SyncResult, error) {
	res := SyncResult{bridge: bridge}
	v, err := c.openBridge(ctx, ops, bridge, mustOwn|bridgePorts)
	if err != nil {
		return ops, res, err
	}
	plan, err := planTunnels(desired, haveTunnels(v.Ports), func(name string) (bool, error) {
		if _, onBridge := v.Ports[name]; onBridge {
			return true, nil
		}
		return v.nameTaken(ctx, c, name)
	})
	if err != nil {
		return ops, res, fmt.Errorf("ovs: sync tunnels on %s: %w", bridge, err)
	}
	res.Conflicts = plan.Conflicts
	out, err := c.planOps(v.Br, plan)
	if err != nil {
		return ops, res, err
	}
	res.Added, res.Updated, res.Deleted, res.Ops = len(plan.Add), len(plan.Update), len(plan.Remove), len(out)
	return append(ops, out...), res, nil
}

// SyncTunnels is SyncTunnelsOps committed in one transaction, none when nothing differs.
// Calls are serialised per Client, so each plans against the result of the last. When
// some desired names conflict (SyncResult.Conflicts) the other changes are committed and
// the error is SyncResult.Err. The agent commits its bridge first, so that spanning tree
// is on before the mesh closes loops.
func (c *Client) SyncTunnels(ctx context.Context, bridge string, desired []TunnelSpec) (SyncResult, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	ops, res, err := c.SyncTunnelsOps(ctx, nil, bridge, desired)
	if err != nil {
		return res, err
	}
	if err := c.Transact(ctx, ops...); err != nil {
		return SyncResult{Conflicts: res.Conflicts, bridge: bridge}, fmt.Errorf("ovs: sync tunnels on %s: %w", bridge, err)
	}
	return res, res.Err()
}

// planOps turns a plan into operations: interface and port inserts, then updates, then a
// single mutation of Bridge.ports (delete the removed, insert the added). Removed ports
// and interfaces are garbage-collected by OVSDB once unreferenced.
func (c *Client) planOps(br *ovsmodel.Bridge, plan tunnelPlan) ([]ovsdb.Operation, error) {
	if plan.empty() {
		return nil, nil
	}
	ifaces := make([]*ovsmodel.Interface, len(plan.Add))
	ports := make([]*ovsmodel.Port, len(plan.Add))
	for i, t := range plan.Add {
		ifaces[i] = &ovsmodel.Interface{UUID: c.namedUUID("iface"), Name: t.Name, Type: t.Type,
			Options: t.Options, BFD: t.BFD, ExternalIDs: tunnelTags(t.Peer)}
		ports[i] = &ovsmodel.Port{UUID: c.namedUUID("port"), Name: t.Name,
			Interfaces: []string{ifaces[i].UUID}, ExternalIDs: tunnelTags(t.Peer), Protected: t.Protected}
	}
	remove := make([]string, len(plan.Remove))
	for i, h := range plan.Remove {
		remove[i] = h.PortUUID
	}
	var updates []ovsdb.Operation
	for _, u := range plan.Update {
		ops, err := c.updateTunnelOps(u)
		if err != nil {
			return nil, err
		}
		updates = append(updates, ops...)
	}
	ops, err := c.addPortsOps(br, ifaces, ports, remove)
	if err != nil {
		return nil, err
	}
	// Inserts first (they define the uuid-names the final mutation uses), then updates,
	// then the Bridge.ports mutation, which addPortsOps put last.
	n := 2 * len(plan.Add)
	out := make([]ovsdb.Operation, 0, len(ops)+len(updates))
	out = append(out, ops[:n]...)
	out = append(out, updates...)
	return append(out, ops[n:]...), nil
}

func (c *Client) updateTunnelOps(u tunnelUpdate) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	iface := &ovsmodel.Interface{UUID: u.Have.Iface.UUID, Type: u.Want.Type, Options: u.Want.Options, BFD: u.Want.BFD}
	if len(u.IfaceColumns) > 0 {
		fieldOf := map[string]any{"type": &iface.Type, "options": &iface.Options, "bfd": &iface.BFD}
		var fields []any
		for _, col := range u.IfaceColumns {
			fields = append(fields, fieldOf[col])
		}
		op, err := c.ovs.Where(iface).Update(iface, fields...)
		if err != nil {
			return nil, fmt.Errorf("ovs: update interface %s: %w", u.Want.Name, err)
		}
		ops = append(ops, op...)
	}
	tags := tunnelTags(u.Want.Peer)
	if u.IfacePeerTag {
		op, err := c.ovs.Where(iface).Mutate(iface, mapMutations(&iface.ExternalIDs, []string{OwnerKey, TunnelPeerKey}, tags)...)
		if err != nil {
			return nil, fmt.Errorf("ovs: tag interface %s: %w", u.Want.Name, err)
		}
		ops = append(ops, op...)
	}
	if u.Protected {
		port := &ovsmodel.Port{UUID: u.Have.PortUUID, Protected: u.Want.Protected}
		op, err := c.ovs.Where(port).Update(port, &port.Protected)
		if err != nil {
			return nil, fmt.Errorf("ovs: set protected on port %s: %w", u.Want.Name, err)
		}
		ops = append(ops, op...)
	}
	if u.PortPeerTag {
		port := &ovsmodel.Port{UUID: u.Have.PortUUID}
		op, err := c.ovs.Where(port).Mutate(port, mapMutations(&port.ExternalIDs, []string{TunnelPeerKey}, map[string]string{TunnelPeerKey: u.Want.Peer})...)
		if err != nil {
			return nil, fmt.Errorf("ovs: tag port %s: %w", u.Want.Name, err)
		}
		ops = append(ops, op...)
	}
	return ops, nil
}
