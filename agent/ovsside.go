package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// ovsSide implements OVSSide on the ovs package.
type ovsSide struct {
	c *ovs.Client
	// vswitchdCtl resolves ovs-vswitchd's unixctl socket for the liveness probe and the MAC
	// table flush; nil: neither.
	vswitchdCtl func() (string, error)
	// flushNow and flushSettled: the loop prevention changed and the MAC table is due a
	// flush now, or once the tree has settled. Only the agent's one reconcile worker calls
	// Apply, so they need no lock.
	flushNow, flushSettled bool
}

// NewOVSSide wraps a connected ovs.Client, without an ovs-vswitchd liveness probe (the
// cleanup subcommand's test builds a node with it).
func NewOVSSide(c *ovs.Client) OVSSide { return &ovsSide{c: c} }

// VswitchdAlive implements OVSSide.
func (o *ovsSide) VswitchdAlive(ctx context.Context) error {
	if o.vswitchdCtl == nil {
		return nil
	}
	return probeVswitchd(ctx, o.vswitchdCtl)
}

func probeVswitchd(ctx context.Context, ctl func() (string, error)) error {
	path, err := ctl()
	if err != nil {
		return err
	}
	_, err = ovs.VswitchdVersion(ctx, path)
	return err
}

// Apply implements OVSSide: two transactions at most, each skipped when empty — the
// bridge with its loop prevention (before any tunnel can close a loop), then the veth port
// (which closes no loop) and the whole mesh at once. A tunnel-type switch is one mesh transaction that deletes the
// old ports and adds the new ones; the bridge row is not touched.
//
// A change of loop prevention is ordered so that the mesh is never without it, in the
// database and in the data path (each step waits until ovs-vswitchd has applied the one
// before, as `ovs-vsctl` without --no-wait does):
//   - tree → split horizon: the tunnels are protected first, while the tree still breaks
//     the loop, and only then is the tree turned off; then the ports are made anew (see
//     recreatePorts for the OVS bug that needs it);
//   - split horizon → tree: the tree goes on first (every port starts blocking/discarding
//     and forwards only once the protocol says so), and only then are the tunnels
//     unprotected.
//
// Then the bridge's MAC table is flushed: MACs learned along the old paths (a peer's pods
// on the tunnel to the root, or on a direct tunnel the new tree blocks) would blackhole
// unicast until they aged out (300 s). Under a tree it is flushed once more when the tree
// has settled, since frames keep being learned while it forms.
func (o *ovsSide) Apply(ctx context.Context, s OVSState) (int, error) {
	n := 0
	spec := s.Bridge
	cur, exists, err := o.c.LoopPrevention(ctx, s.Bridge.Name)
	if err != nil {
		return n, err
	}
	changed := exists && !strings.EqualFold(cur, spec.Protocol)
	if changed && spec.Protocol == "" {
		res, err := o.c.SyncTunnels(ctx, s.Bridge.Name, s.Tunnels)
		n += res.Ops
		if err == nil {
			err = o.waitApplied(ctx)
		}
		if err != nil {
			return n, err
		}
	}
	ops, err := o.c.EnsureBridgeOps(ctx, nil, spec)
	if err != nil {
		return n, err
	}
	if err := o.c.Transact(ctx, ops...); err != nil {
		return n, err
	}
	n += len(ops)
	if changed {
		if err := o.waitApplied(ctx); err != nil {
			return n, err
		}
	}
	if changed && spec.Protocol == "" {
		// OVS 3.1 leaves every port that was under the tree out of floods once the tree is
		// off (it recomputes a port's floodability while the tree is still set, and not
		// after), so broadcasts and ARP would reach no peer and no pod. Ports made anew are
		// floodable: the veth port and the tunnels are deleted, and re-added below (now
		// protected from their first transaction). Costs a few milliseconds of loss, once,
		// on a switch that has already cost the tree's reconvergence.
		m, err := o.recreatePorts(ctx, s)
		n += m
		if err != nil {
			return n, err
		}
	}
	m, err := o.replugStaleVeth(ctx, s)
	n += m
	if err != nil {
		return n, err
	}
	ops, err = o.c.EnsurePortOps(ctx, nil, s.Bridge.Name, s.VethPort, ovs.PortSystem)
	if err != nil {
		return n, err
	}
	ops, res, err := o.c.SyncTunnelsOps(ctx, ops, s.Bridge.Name, s.Tunnels)
	if err != nil {
		return n, err
	}
	if err := o.c.Transact(ctx, ops...); err != nil {
		return n, err
	}
	n += len(ops)
	if err := res.Err(); err != nil {
		return n, err // tunnels whose names a user's port holds; the rest is committed
	}
	if changed {
		// Remembered until done: once the bridge matches, nothing else says a flush is due.
		o.flushNow, o.flushSettled = true, s.Protocol.SpanningTree()
	}
	if n > 0 && o.vswitchdCtl != nil {
		// Let ovs-vswitchd set the new ports up before the caller reads their state: the
		// status then goes from "joining" straight to the port's real state, one update
		// fewer for every watcher. A timeout is not an error here: the liveness probe that
		// follows reports an ovs-vswitchd that does not answer.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = o.c.WaitApplied(wctx)
		cancel()
	}
	return n, o.flush(ctx, s)
}

// replugStaleVeth removes the veth port when the host side has just made the veth anew, or
// ovs-vswitchd reports a device of another ifindex for it than the host has, and waits until
// ovs-vswitchd has let go; EnsurePortOps then adds it again and ovs-vswitchd opens the new
// device. Without it the userspace datapath keeps a socket on the vanished device: the port
// looks fine in OVSDB and carries nothing.
func (o *ovsSide) replugStaleVeth(ctx context.Context, s OVSState) (int, error) {
	if !s.VethRecreated {
		opened, err := o.c.InterfaceIfindex(ctx, s.VethPort)
		if err != nil || s.VethIfindex == 0 || opened == 0 || opened == s.VethIfindex {
			return 0, err
		}
	}
	ops, err := o.c.DeletePortOps(ctx, nil, s.Bridge.Name, s.VethPort)
	if err == nil {
		err = o.c.Transact(ctx, ops...)
	}
	if err == nil && len(ops) > 0 {
		err = o.waitApplied(ctx)
	}
	return len(ops), err
}

// recreatePorts removes the bridge's veth port and tunnels and waits until ovs-vswitchd has
// removed them, so that adding them again makes new ports, not the same ones.
func (o *ovsSide) recreatePorts(ctx context.Context, s OVSState) (int, error) {
	ops, err := o.c.DeletePortOps(ctx, nil, s.Bridge.Name, s.VethPort)
	if err != nil {
		return 0, err
	}
	ops, _, err = o.c.SyncTunnelsOps(ctx, ops, s.Bridge.Name, nil)
	if err == nil {
		err = o.c.Transact(ctx, ops...) // one transaction: the veth port and every tunnel
	}
	if err != nil {
		return 0, err
	}
	return len(ops), o.waitApplied(ctx)
}

// flush empties the bridge's MAC table when a loop-prevention change asks for it: once
// ovs-vswitchd has applied the change, and (under a tree) once more when every tunnel has
// reached a stable state.
func (o *ovsSide) flush(ctx context.Context, s OVSState) error {
	if o.vswitchdCtl == nil || (!o.flushNow && !o.flushSettled) {
		return nil
	}
	if !o.flushNow {
		ports, err := o.c.PortStates(ctx, s.Bridge.Name)
		if err != nil || !tunnelReport(s, ports).Ready() {
			return err // not settled yet: the next pass (port states change) looks again
		}
		o.flushSettled = false
	}
	if err := o.waitApplied(ctx); err != nil {
		return err
	}
	ctl, err := o.vswitchdCtl()
	if err == nil {
		err = ovs.FlushFDB(ctx, ctl, s.Bridge.Name)
	}
	if err != nil {
		return fmt.Errorf("flushing the MAC table of %s after the loop-prevention change: %w", s.Bridge.Name, err)
	}
	o.flushNow = false
	return nil
}

// waitApplied waits (at most 10 s) until ovs-vswitchd has applied what is committed.
func (o *ovsSide) waitApplied(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return o.c.WaitApplied(ctx)
}

// Ports implements OVSSide.
func (o *ovsSide) Ports(ctx context.Context, bridge string) ([]ovs.PortState, error) {
	return o.c.PortStates(ctx, bridge)
}

// DeleteBridge implements OVSSide.
func (o *ovsSide) DeleteBridge(ctx context.Context, bridge string) (int, error) {
	ops, err := o.c.DeleteBridgeOps(ctx, nil, bridge)
	if err != nil {
		return 0, err
	}
	return len(ops), o.c.Transact(ctx, ops...)
}

// Connector dials ovsdb-server on first use and forwards the client's change and reconnect
// notifications to Events, which the controller watches through source.Channel. It also
// probes ovs-vswitchd every VswitchdProbeInterval and sends an event when the answer flips
// (alive ↔ not), since nothing in OVSDB changes when ovs-vswitchd dies.
type Connector struct {
	Socket string
	// VswitchdCtl is ovs-vswitchd's unixctl socket; empty: found from ovs-vswitchd.pid in
	// the directory of Socket, as `ovs-appctl -t ovs-vswitchd` finds it.
	VswitchdCtl string
	Log         logr.Logger
	// Events receives one GenericEvent per (coalesced) OVS change.
	Events chan event.GenericEvent

	mu     sync.Mutex
	client *ovs.Client
	side   OVSSide
	stop   chan struct{}
}

// NewConnector returns a Connector for the ovsdb-server socket.
func NewConnector(socket string, log logr.Logger) *Connector {
	return &Connector{Socket: socket, Log: log, Events: make(chan event.GenericEvent, 1)}
}

// Connect implements OVSConnector.
func (c *Connector) Connect(ctx context.Context) (OVSSide, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.side != nil {
		return c.side, nil
	}
	// FailFast: a pass while the connection is down reports OVSUnavailable at once rather
	// than waiting for the reconnect; the reconnect's Changes event runs the next one.
	cl, err := ovs.Dial(ctx, ovs.Options{Socket: c.Socket, Logger: c.Log.WithName("ovs"), FailFast: true, ObserveTransaction: ObserveOVSDBTransaction})
	if err != nil {
		return nil, err
	}
	c.client, c.side, c.stop = cl, &ovsSide{c: cl, vswitchdCtl: c.vswitchdCtl}, make(chan struct{})
	go c.forward(cl, c.stop)
	go c.watchVswitchd(c.stop)
	c.Log.Info("connected to ovsdb-server", "socket", c.Socket)
	return c.side, nil
}

func (c *Connector) forward(cl *ovs.Client, stop <-chan struct{}) {
	ev := event.GenericEvent{Object: &v1alpha1.NodeSubnet{}}
	for {
		select {
		case <-stop:
			return
		case <-cl.Changes():
		}
		select {
		case c.Events <- ev:
		default: // one pending event is enough: the reconcile re-reads everything
		}
	}
}

// VswitchdProbeInterval is how often the Connector asks ovs-vswitchd whether it is alive.
const VswitchdProbeInterval = 5 * time.Second

func (c *Connector) vswitchdCtl() (string, error) {
	if c.VswitchdCtl != "" {
		return c.VswitchdCtl, nil
	}
	return ovs.VswitchdCtlPath(filepath.Dir(c.Socket))
}

// watchVswitchd turns ovs-vswitchd's death and return into reconciles.
func (c *Connector) watchVswitchd(stop <-chan struct{}) {
	ev := event.GenericEvent{Object: &v1alpha1.NodeSubnet{}}
	t := time.NewTicker(VswitchdProbeInterval)
	defer t.Stop()
	// The pass that connected saw it alive unless it said otherwise (and then it retries
	// on its own), so alive is the starting point; an extra event costs one pass.
	wasAlive := true
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), VswitchdProbeInterval)
		err := probeVswitchd(ctx, c.vswitchdCtl)
		cancel()
		if alive := err == nil; alive != wasAlive {
			if alive {
				c.Log.Info("ovs-vswitchd answers again")
			} else {
				c.Log.Error(err, "ovs-vswitchd does not answer")
			}
			wasAlive = alive
			select {
			case c.Events <- ev:
			default:
			}
		}
	}
}

// Close closes the OVS connection, if any.
func (c *Connector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		close(c.stop)
		c.client.Close()
		c.client, c.side = nil, nil
	}
}
