package ovs

import (
	"context"
	"fmt"
	"maps"
	"slices"

	libmodel "github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovsmesh/ovsmesh/ovs/model"
)

// pendingRows is what the operations a caller has gathered so far (and not committed)
// insert: the Open_vSwitch, Bridge, Port and Interface rows, by uuid-name, and the
// changes they make to Bridge.ports. The builders read the cache through it, so that a
// builder for a port on a bridge inserted earlier in the same list finds that bridge (by
// its uuid-name), and a builder run twice on one list does not insert its rows twice.
// Other updates and deletes in the list are not reflected.
type pendingRows struct {
	rows   map[string]libmodel.Model     // uuid-name → model, its UUID the uuid-name
	byName map[string]map[string]string  // table → name → uuid-name
	ports  map[string][2]map[string]bool // bridge UUID or uuid-name → ports added, removed
	root   string                        // uuid-name of an inserted Open_vSwitch row
}

// pending reads ops. Only the rows of the four tables ovsmesh writes are kept.
func (c *Client) pending(ops []ovsdb.Operation) (*pendingRows, error) {
	p := &pendingRows{}
	if len(ops) == 0 {
		return p, nil
	}
	dbModel := c.ovs.Cache().DatabaseModel()
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Op == ovsdb.OperationInsert && op.UUIDName != "":
			switch op.Table {
			case model.OpenvSwitchTable:
				p.root = op.UUIDName
				continue
			case model.BridgeTable, model.PortTable, model.InterfaceTable:
			default:
				continue
			}
			m, err := libmodel.CreateModel(dbModel, op.Table, &op.Row, op.UUIDName)
			if err != nil {
				return nil, fmt.Errorf("ovs: read operation %d (%s): %w", i, describeOp(*op), err)
			}
			if p.rows == nil {
				p.rows, p.byName = map[string]libmodel.Model{}, map[string]map[string]string{}
			}
			p.rows[op.UUIDName] = m
			if name, ok := op.Row["name"].(string); ok {
				if p.byName[op.Table] == nil {
					p.byName[op.Table] = map[string]string{}
				}
				p.byName[op.Table][name] = op.UUIDName
			}
		case op.Op == ovsdb.OperationMutate && op.Table == model.BridgeTable:
			target := targetUUID(*op)
			if target == "" {
				continue
			}
			for _, m := range op.Mutations {
				if m.Column != "ports" {
					continue
				}
				if p.ports == nil {
					p.ports = map[string][2]map[string]bool{}
				}
				ch, ok := p.ports[target]
				if !ok {
					ch = [2]map[string]bool{{}, {}}
					p.ports[target] = ch
				}
				for _, u := range uuidsOf(m.Value) {
					switch m.Mutator {
					case ovsdb.MutateOperationInsert:
						ch[0][u], ch[1][u] = true, false
					case ovsdb.MutateOperationDelete:
						ch[0][u], ch[1][u] = false, true
					}
				}
			}
		}
	}
	return p, nil
}

// uuidsOf returns the UUIDs (or uuid-names) of a set or single UUID value as libovsdb
// puts it into an operation.
func uuidsOf(v any) []string {
	switch v := v.(type) {
	case ovsdb.UUID:
		return []string{v.GoUUID}
	case ovsdb.OvsSet:
		var out []string
		for _, e := range v.GoSet {
			out = append(out, uuidsOf(e)...)
		}
		return out
	case string:
		return []string{v}
	case []string:
		return v
	}
	return nil
}

// row returns the pending row of that table and name, nil when ops insert none.
func (p *pendingRows) row(table, name string) libmodel.Model {
	if u, ok := p.byName[table][name]; ok {
		return libmodel.Clone(p.rows[u])
	}
	return nil
}

// byUUID copies the pending row with that uuid-name into m; false when there is none.
func (p *pendingRows) byUUID(uuid string, m libmodel.Model) bool {
	r, ok := p.rows[uuid]
	if !ok {
		return false
	}
	libmodel.CloneInto(r, m)
	return true
}

// portsOf applies the pending changes to a bridge's port set.
func (p *pendingRows) portsOf(br *model.Bridge) []string {
	ch, ok := p.ports[br.UUID]
	if !ok {
		return br.Ports
	}
	out := make([]string, 0, len(br.Ports)+len(ch[0]))
	for _, u := range br.Ports {
		if !ch[1][u] {
			out = append(out, u)
		}
	}
	for _, u := range slices.Sorted(maps.Keys(ch[0])) {
		if ch[0][u] && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// bridgeView is a bridge as the cache and the caller's pending operations show it: the
// one preamble of every call that works on a bridge (wait for a current cache, find the
// bridge, read its ports).
type bridgeView struct {
	// Br is the bridge, nil when there is none (only without mustOwn). Br.Ports includes
	// the pending changes; Br.UUID is a uuid-name when Pending.
	Br *model.Bridge
	// Pending: the bridge is inserted by the caller's operations, not yet committed.
	Pending bool
	// Ports are the bridge's ports by name (only when asked for).
	Ports map[string]portRow
	rows  *pendingRows
}

// viewMode says what openBridge requires and reads.
type viewMode int

const (
	anyBridge   viewMode = 0         // a missing bridge is Br == nil
	mustOwn     viewMode = 1 << iota // a missing bridge is ErrNoBridge, a user's ErrNotOwned
	bridgePorts                      // read the bridge's ports into Ports
)

// openBridge waits for a current cache and looks the bridge up, in the cache or among
// the rows ops insert.
func (c *Client) openBridge(ctx context.Context, ops []ovsdb.Operation, name string, mode viewMode) (*bridgeView, error) {
	if err := c.waitConnected(ctx); err != nil {
		return nil, err
	}
	rows, err := c.pending(ops)
	if err != nil {
		return nil, err
	}
	v := &bridgeView{rows: rows}
	v.Br, err = c.bridge(ctx, name)
	if err != nil {
		return nil, err
	}
	if v.Br == nil {
		if m, ok := rows.row(model.BridgeTable, name).(*model.Bridge); ok {
			v.Br, v.Pending = m, true
		}
	}
	if v.Br == nil {
		if mode&mustOwn != 0 {
			return nil, fmt.Errorf("ovs: bridge %s: %w", name, ErrNoBridge)
		}
		return v, nil
	}
	if mode&mustOwn != 0 && !owned(v.Br.ExternalIDs) {
		return nil, fmt.Errorf("ovs: bridge %s: %w (external_ids:%s is not %q)", name, ErrNotOwned, OwnerKey, OwnerValue)
	}
	v.Br.Ports = rows.portsOf(v.Br)
	if mode&bridgePorts != 0 {
		if v.Ports, err = c.portsOf(ctx, rows, v.Br); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// nameTaken reports whether a Port or an Interface of that name exists anywhere in the
// database or among the pending rows.
func (v *bridgeView) nameTaken(ctx context.Context, c *Client, name string) (bool, error) {
	if v.rows.row(model.PortTable, name) != nil || v.rows.row(model.InterfaceTable, name) != nil {
		return true, nil
	}
	return c.nameTaken(ctx, name)
}
