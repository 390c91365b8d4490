package harness

import (
	"context"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// Process is a long-running child (etcd excepted: envtest owns it) with its output in a log
// file of the run directory.
type Process = proc.Process

// startProcess starts argv, inside network namespace ns when ns is not empty.
func startProcess(dir, name, ns string, env []string, argv ...string) (*Process, error) {
	return proc.Start(dir, name, ns, env, argv...)
}

// waitFor polls cond every 100 ms until it is true, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return proc.WaitFor(ctx, timeout, 100*time.Millisecond, cond)
}
