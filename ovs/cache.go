package ovs

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovsmesh/ovsmesh/ovs/model"
)

// Cache readers. Every one tolerates rows that are missing or odd (a port without
// interfaces, a dangling reference while an update is half applied): they are skipped or
// reported, never dereferenced blindly.

// rootRow returns the single Open_vSwitch row, or nil when the database has not been
// initialised (`ovs-vsctl init` or ovs-vswitchd's start-up does that).
func (c *Client) rootRow(ctx context.Context) (*model.OpenvSwitch, error) {
	var rows []*model.OpenvSwitch
	if err := c.ovs.List(ctx, &rows); err != nil {
		return nil, fmt.Errorf("ovs: list Open_vSwitch: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0], nil
}

// bridge returns the bridge with that name, or nil.
func (c *Client) bridge(ctx context.Context, name string) (*model.Bridge, error) {
	br := &model.Bridge{Name: name}
	if err := c.get(ctx, br); err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("ovs: read bridge %s: %w", name, err)
	}
	return br, nil
}

// portRow is a port of a bridge with its interfaces as found in the cache.
type portRow struct {
	Port   *model.Port
	Ifaces []*model.Interface // in Port.Interfaces order, missing rows left out
}

// iface returns the port's interface when it has exactly one (every port ovsmesh makes
// does), else nil.
func (p portRow) iface() *model.Interface {
	if len(p.Ifaces) != 1 || len(p.Port.Interfaces) != 1 {
		return nil
	}
	return p.Ifaces[0]
}

// portsOf returns the ports of a bridge, keyed by port name: rows inserted by pending
// operations first, then the cache.
func (c *Client) portsOf(ctx context.Context, pending *pendingRows, br *model.Bridge) (map[string]portRow, error) {
	out := make(map[string]portRow, len(br.Ports))
	for _, uuid := range br.Ports {
		p := &model.Port{UUID: uuid}
		if !pending.byUUID(uuid, p) {
			if err := c.get(ctx, p); err != nil {
				if errors.Is(err, client.ErrNotFound) {
					continue // being deleted, or not yet in the cache
				}
				return nil, fmt.Errorf("ovs: read port %s of bridge %s: %w", uuid, br.Name, err)
			}
		}
		row := portRow{Port: p}
		for _, iu := range p.Interfaces {
			i := &model.Interface{UUID: iu}
			if pending.byUUID(iu, i) {
				row.Ifaces = append(row.Ifaces, i)
				continue
			}
			if err := c.get(ctx, i); err != nil {
				if errors.Is(err, client.ErrNotFound) {
					continue
				}
				return nil, fmt.Errorf("ovs: read interface %s of port %s: %w", iu, p.Name, err)
			}
			row.Ifaces = append(row.Ifaces, i)
		}
		out[p.Name] = row
	}
	return out, nil
}

// nameTaken reports whether a Port or an Interface of that name exists anywhere in the
// database (both tables index their name column).
func (c *Client) nameTaken(ctx context.Context, name string) (bool, error) {
	for _, m := range []interface{ GetUUID() string }{&model.Port{Name: name}, &model.Interface{Name: name}} {
		err := c.get(ctx, m)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, client.ErrNotFound) {
			return false, fmt.Errorf("ovs: look up %s: %w", name, err)
		}
	}
	return false, nil
}

func (c *Client) get(ctx context.Context, m interface{ GetUUID() string }) error {
	return c.ovs.Get(ctx, m)
}
