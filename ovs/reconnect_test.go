package ovs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestReconnectAfterServerRestart kills ovsdb-server (SIGKILL) twice mid-run and restarts
// it on the same socket and database: the client notices, reconnects, re-reads its cache,
// announces it on Changes, and the syncs that follow succeed, including one issued while
// the server was down.
func TestReconnectAfterServerRestart(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP})
	mustSync(t, c, "obr0", threePeers("gre"))

	// 1. Kill; restart; the next sync succeeds.
	srv.Kill()
	waitFor(t, 5*time.Second, "the client to notice the lost connection", func() bool { return !c.Connected() })
	time.Sleep(300 * time.Millisecond) // a few failed reconnect attempts
	drain(c.Changes())
	srv.Start()
	waitFor(t, 10*time.Second, "the reconnect", func() bool { return c.Reconnects() == 1 })
	select {
	case <-c.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no Changes notification after the reconnect")
	}
	res := mustSync(t, c, "obr0", threePeers("vxlan"))
	if res.Added != 3 || res.Deleted != 3 {
		t.Errorf("sync after restart = %+v, want 3 added, 3 deleted", res)
	}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, []string{"vxlan-ac1e0002", "vxlan-ac1e0003", "vxlan-ac1e0004"}) {
		t.Errorf("ports after restart = %v", got)
	}

	// 2. A sync issued while the server is down waits for the reconnect and then works
	// against the re-read cache.
	srv.Kill()
	waitFor(t, 5*time.Second, "the client to notice the lost connection", func() bool { return !c.Connected() })
	done := make(chan error, 1)
	var res2 SyncResult
	go func() {
		var err error
		res2, err = c.SyncTunnels(ctx, "obr0", threePeers("vxlan")[:1])
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("SyncTunnels returned while ovsdb-server was down: %v", err)
	default:
	}
	srv.Start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SyncTunnels across the restart: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SyncTunnels did not finish after the restart")
	}
	if res2.Deleted != 2 || res2.Ops != 1 {
		t.Errorf("sync across restart = %+v, want 2 deleted in 1 op", res2)
	}
	if got := portsOf(t, srv, "obr0"); !slices.Equal(got, []string{"vxlan-ac1e0002"}) {
		t.Errorf("ports = %v", got)
	}
	waitFor(t, 5*time.Second, "the second reconnect to be counted", func() bool { return c.Reconnects() == 2 })
	if res := mustSync(t, c, "obr0", threePeers("vxlan")[:1]); res.Ops != 0 {
		t.Errorf("sync after reconnect again = %+v, want 0 ops", res)
	}

	// A read while disconnected waits for the reconnect or its context.
	srv.Kill()
	waitFor(t, 5*time.Second, "the client to notice the lost connection", func() bool { return !c.Connected() })
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.OwnedPorts(short, "obr0"); err == nil || !strings.Contains(err.Error(), "waiting for the connection") {
		t.Errorf("OwnedPorts while disconnected = %v, want a wait error", err)
	}
	srv.Start()
	if owned, err := c.OwnedPorts(ctx, "obr0"); err != nil || len(owned) != 2 {
		t.Errorf("OwnedPorts after restart = %v, %v; want obr0 and one tunnel", owned, err)
	}
}

// TestChangesNotifies: a change someone else makes reaches Changes.
func TestChangesNotifies(t *testing.T) {
	srv, c := startDB(t)
	ensureBridge(t, c, BridgeSpec{Name: "obr0", Protocol: ProtocolSTP})
	time.Sleep(100 * time.Millisecond)
	drain(c.Changes())
	srv.Vsctl("add-port", "obr0", "user1")
	select {
	case <-c.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no Changes notification after ovs-vsctl add-port")
	}
}

func TestDialMissingSocket(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "om")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "db.sock")
	_, err = Dial(testCtx(t), Options{Socket: sock})
	if err == nil || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Dial(missing socket) = %v, want an error naming %s", err, sock)
	}
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Dial(testCtx(t), Options{Socket: sock})
	if err == nil || !strings.Contains(err.Error(), "not a unix socket") {
		t.Errorf("Dial(regular file) = %v, want 'not a unix socket'", err)
	}
}
