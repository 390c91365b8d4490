package ovs

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// hungBound is how soon a hung ovsdb-server must be noticed: probeInterval + probeTimeout,
// plus slack for a loaded test machine.
const hungBound = probeInterval + probeTimeout + 1500*time.Millisecond

// TestHungServer stops ovsdb-server with SIGSTOP, which keeps its socket open: the client
// must not trust its cache or wait forever. Within the probe bound it reports itself
// disconnected, fires Changes, ends the transaction that was in flight with ErrUnavailable
// and (FailFast, as the agent dials) fails new ones at once; after SIGCONT it reconnects
// and works again.
func TestHungServer(t *testing.T) {
	srv, c := startDBWith(t, Options{FailFast: true})
	ensureBridge(t, c, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	mustSync(t, c, "obr0", threePeers("gre"))
	time.Sleep(100 * time.Millisecond) // let the notifications of our own writes arrive
	drain(c.Changes())
	ops := mustOps(t, c, "obr1")

	srv.Pause()
	hungAt := time.Now()
	inFlight := make(chan error, 1)
	go func() {
		_, err := c.SyncTunnels(testCtx(t), "obr0", threePeers("vxlan"))
		inFlight <- err
	}()
	waitFor(t, hungBound, "the client to notice the hung server", func() bool { return !c.Connected() })
	t.Logf("hung ovsdb-server noticed after %v", time.Since(hungAt).Round(time.Millisecond))
	select {
	case <-c.Changes():
	case <-time.After(time.Second):
		t.Error("no Changes notification when the connection was declared down")
	}
	select {
	case err := <-inFlight:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("transaction in flight on the hung server = %v, want ErrUnavailable", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the transaction in flight did not end when the connection was declared down")
	}
	start := time.Now()
	err := c.Transact(testCtx(t), ops...)
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
		t.Errorf("Transact on the hung server = %v after %v, want ErrUnavailable at once", err, time.Since(start))
	}

	srv.Resume()
	waitFor(t, 30*time.Second, "the reconnect after SIGCONT", func() bool { return c.Connected() })
	if c.Reconnects() != 1 {
		t.Errorf("Reconnects = %d, want 1", c.Reconnects())
	}
	// The cancelled transaction may have committed all the same: it was sent before the
	// server stopped, and the server reads it when continued. Either way one sync later
	// the mesh is the one asked for.
	mustSync(t, c, "obr0", threePeers("vxlan"))
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, []string{"vxlan-ac1e0002", "vxlan-ac1e0003", "vxlan-ac1e0004"}) {
		t.Errorf("ports after the server came back = %v", got)
	}
}

// TestKilledServerNoticedAtOnce: a killed server closes the socket; Connected turns false
// and Changes fires without waiting for the probe.
func TestKilledServerNoticedAtOnce(t *testing.T) {
	srv, c := startDBWith(t, Options{FailFast: true})
	time.Sleep(100 * time.Millisecond)
	drain(c.Changes())
	ops := mustOps(t, c, "obr1")
	srv.Kill()
	waitFor(t, probeInterval, "the client to notice the killed server", func() bool { return !c.Connected() })
	select {
	case <-c.Changes():
	case <-time.After(time.Second):
		t.Error("no Changes notification when the connection was lost")
	}
	if err := c.Transact(testCtx(t), ops...); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Transact with the server dead = %v, want ErrUnavailable", err)
	}
}

// mustOps builds the operations that would create a bridge, from the cache.
func mustOps(t *testing.T, c *Client, name string) []ovsdb.Operation {
	t.Helper()
	ops, err := c.EnsureBridgeOps(testCtx(t), nil, BridgeSpec{Name: name})
	if err != nil || len(ops) == 0 {
		t.Fatalf("EnsureBridgeOps(%s) = %d ops, %v", name, len(ops), err)
	}
	return ops
}
