package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ovsmesh/ovsmesh/ovs"
)

// OVSProgOptions sizes the OVS programming benchmark.
type OVSProgOptions struct {
	Peers int // tunnel peers programmed (1,000 in the report)
	Reps  int // repetitions of the fast methods (SyncTunnels, batched ovs-vsctl); median kept
}

// OVSProgResult holds the time to program Peers tunnels into an empty bridge three ways.
type OVSProgResult struct {
	Peers   int
	Sync    time.Duration // ovs.Client.SyncTunnels: one transaction (median of Reps)
	Loop    time.Duration // one `ovs-vsctl add-port ... -- set Interface ...` per peer
	Batched time.Duration // one ovs-vsctl invocation chaining every peer (median of Reps)
}

// Figures: the loop and the batched invocation relative to SyncTunnels (speed-ups).
func (r OVSProgResult) Figures() []Figure {
	n := strconv.Itoa(r.Peers)
	loop := AtLeast("OVS: "+n+" peers, SyncTunnels vs ovs-vsctl add-port loop (speed-up)", ms(r.Sync), ms(r.Loop), DurRatio(r.Loop, r.Sync), 50)
	batch := Figure{Name: "OVS: " + n + " peers, SyncTunnels vs one batched ovs-vsctl (speed-up)", Ours: ms(r.Sync), Ref: ms(r.Batched),
		Ratio: DurRatio(r.Batched, r.Sync), Target: "(none; > 1× = faster)", Met: true}
	return []Figure{loop, batch}
}

// OVSProgramming measures programming opts.Peers VXLAN tunnels (ovs.SyntheticPeers) onto an
// ovsmesh bridge in a fresh private ovsdb-server per measurement, three ways, all writing the
// same rows (type, remote_ip, key, dst_port and the ovsmesh external_ids). Only the database
// is programmed: ovs-vsctl runs with --no-wait and SyncTunnels does not wait for
// ovs-vswitchd either, so the three measure the same work. The ovs client connection is made
// before the clock starts (the agent holds one); each ovs-vsctl invocation connects and reads
// the database itself, which is the cost of the shell approach.
func OVSProgramming(ctx context.Context, e *Env, o OVSProgOptions) (OVSProgResult, error) {
	if o.Reps < 1 {
		o.Reps = 1
	}
	r := OVSProgResult{Peers: o.Peers}
	peers := ovs.SyntheticPeers(o.Peers, ovs.TunnelVXLAN)
	var syncs, batches []time.Duration
	for i := 0; i < o.Reps; i++ {
		d, err := timeSync(ctx, e, fmt.Sprintf("sync%d", i), peers)
		if err != nil {
			return r, err
		}
		syncs = append(syncs, d)
		d, err = timeVsctl(ctx, e, fmt.Sprintf("batch%d", i), peers, true)
		if err != nil {
			return r, err
		}
		batches = append(batches, d)
	}
	d, err := timeVsctl(ctx, e, "loop", peers, false)
	if err != nil {
		return r, err
	}
	r.Sync, r.Batched, r.Loop = Percentile(syncs, 50), Percentile(batches, 50), d
	e.Logf("OVS programming, %d peers: SyncTunnels %v (runs %v), batched ovs-vsctl %v (runs %v), add-port loop %v",
		o.Peers, r.Sync, syncs, r.Batched, batches, r.Loop)
	return r, nil
}

// freshBridge starts an ovsdb-server and creates obr0 the way the agent does.
func freshBridge(ctx context.Context, e *Env, name string) (*OVSDB, *ovs.Client, error) {
	db, err := e.StartOVSDB(ctx, name, "")
	if err != nil {
		return nil, nil, err
	}
	c, err := ovs.Dial(ctx, ovs.Options{Socket: db.Sock})
	if err != nil {
		return nil, nil, err
	}
	e.Defer(c.Close)
	ops, err := c.EnsureBridgeOps(ctx, nil, ovs.BridgeSpec{Name: "obr0", DatapathType: ovs.DatapathNetdev, Protocol: ovs.ProtocolSTP})
	if err == nil {
		err = c.Transact(ctx, ops...)
	}
	return db, c, err
}

func timeSync(ctx context.Context, e *Env, name string, peers []ovs.TunnelSpec) (time.Duration, error) {
	db, c, err := freshBridge(ctx, e, name)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	res, err := c.SyncTunnels(ctx, "obr0", peers)
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if res.Added != len(peers) {
		return 0, fmt.Errorf("SyncTunnels added %d, want %d", res.Added, len(peers))
	}
	return d, checkPorts(ctx, db, len(peers))
}

// vsctlTunnelArgs is the ovs-vsctl command for one peer, writing what SyncTunnels writes.
func vsctlTunnelArgs(p ovs.TunnelSpec) []string {
	name := ovs.PortName(p)
	tags := []string{"external_ids:ovsmesh.io/owner=ovsmesh", "external_ids:ovsmesh.io/tunnel-peer=" + p.PeerName}
	args := []string{"add-port", "obr0", name, "--", "set", "Interface", name, "type=" + strings.ToLower(p.Type),
		"options:remote_ip=" + p.RemoteIP, "options:key=" + strconv.FormatInt(*p.Key, 10), "options:dst_port=" + strconv.Itoa(p.DstPort)}
	args = append(args, tags...)
	return append(append(args, "--", "set", "Port", name), tags...)
}

func timeVsctl(ctx context.Context, e *Env, name string, peers []ovs.TunnelSpec, batched bool) (time.Duration, error) {
	db, c, err := freshBridge(ctx, e, name)
	if err != nil {
		return 0, err
	}
	c.Close() // the shell approach has no client of its own
	var t0 time.Time
	if batched {
		var args []string
		for _, p := range peers {
			args = append(append(args, "--"), vsctlTunnelArgs(p)...)
		}
		t0 = time.Now()
		if _, err := db.Vsctl(ctx, args...); err != nil {
			return 0, err
		}
	} else {
		t0 = time.Now()
		for _, p := range peers {
			if _, err := db.Vsctl(ctx, vsctlTunnelArgs(p)...); err != nil {
				return 0, err
			}
		}
	}
	d := time.Since(t0)
	return d, checkPorts(ctx, db, len(peers))
}

// checkPorts asserts that the bridge holds n ports whose interfaces are VXLAN tunnels.
func checkPorts(ctx context.Context, db *OVSDB, n int) error {
	out, err := db.Vsctl(ctx, "--bare", "--columns=name", "find", "Interface", "type=vxlan")
	if err != nil {
		return err
	}
	if got := len(strings.Fields(out)); got != n {
		return fmt.Errorf("%s: %d VXLAN interfaces, want %d", db.Dir, got, n)
	}
	return nil
}
