package ovs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovsmesh/ovsmesh/ovs/internal/ovstest"
)

// testCtx bounds a test's OVSDB calls.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startDB starts a private ovsdb-server and dials it.
func startDB(t *testing.T) (*ovstest.Server, *Client) {
	t.Helper()
	return startDBWith(t, Options{})
}

// startDBWith is startDB with client options (Socket and Logger are set here).
func startDBWith(t *testing.T, opts Options) (*ovstest.Server, *Client) {
	t.Helper()
	srv := ovstest.StartServer(t)
	opts.Socket, opts.Logger = srv.Sock, testr.NewWithOptions(t, testr.Options{Verbosity: 0})
	c, err := Dial(testCtx(t), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

// commit transacts ops and fails the test on error.
func commit(t *testing.T, c *Client, ops []ovsdb.Operation, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("building operations: %v", err)
	}
	if err := c.Transact(testCtx(t), ops...); err != nil {
		t.Fatalf("Transact: %v", err)
	}
}

// get reads one column of a record with ovs-vsctl, unquoted.
func get(t *testing.T, srv *ovstest.Server, table, record, column string) string {
	t.Helper()
	return strings.Trim(strings.TrimSpace(srv.Vsctl("get", table, record, column)), `"`)
}

// lines splits ovs-vsctl output into non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func mustSync(t *testing.T, c *Client, bridge string, desired []TunnelSpec) SyncResult {
	t.Helper()
	res, err := c.SyncTunnels(testCtx(t), bridge, desired)
	if err != nil {
		t.Fatalf("SyncTunnels: %v", err)
	}
	return res
}

func ensureBridge(t *testing.T, c *Client, spec BridgeSpec) {
	t.Helper()
	ops, err := c.EnsureBridgeOps(testCtx(t), nil, spec)
	commit(t, c, ops, err)
}

func key(k int64) *int64 { return &k }

// waitCached waits until the client's cache holds a port or interface of each name. A row
// written with ovs-vsctl reaches the cache through the monitor a moment later; a test that
// acts on the cache right after would race it (the product simply retries on its next pass).
func waitCached(t *testing.T, c *Client, names ...string) {
	t.Helper()
	ctx := testCtx(t)
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range names {
		for {
			taken, err := c.nameTaken(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			if taken {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached the client's cache", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
