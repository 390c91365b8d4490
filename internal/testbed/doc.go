// Package testbed is what every test fixture of ovsmesh is built from, so that the unit
// tests' fixtures (ovs/internal/ovstest, agent/nodetest), the netns harness
// (internal/harness) and the real-node cluster (internal/kubenodes) share one way of doing
// each thing:
//
//   - RunID: the per-run id in every namespace, link, cgroup and temp dir name, so runs
//     (and their leftovers, should one crash) never collide;
//   - WaitFor: the one poll loop (internal/proc.WaitFor);
//   - NetNS: a network namespace for one test, removed when it ends;
//   - StartOVS: a private ovsdb-server (and ovs-vswitchd, userspace datapath) from the schema
//     committed beside the generated models, in this namespace, a network namespace, or a
//     real-node's namespaces;
//   - processes are internal/proc's: own process group, output in a log, killed with the
//     parent.
//
// It is test support: unlike the product it runs the OVS tools.
package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"runtime"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// RunID returns n random bytes as hex: the per-run part of every name a fixture makes.
func RunID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WaitFor polls cond every interval until it is true, ctx ends or timeout passes.
func WaitFor(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	return proc.WaitFor(ctx, timeout, interval, cond)
}

// Schema is the absolute path of the OVSDB schema committed beside the generated models
// (ovs/model/vswitch.ovsschema), so the databases of every test and the models agree.
func Schema() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "ovs", "model", "vswitch.ovsschema")
}
