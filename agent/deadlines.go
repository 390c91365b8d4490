package agent

import (
	"context"
	"errors"
	"time"
)

// Deadlines. Nothing the agent waits for can block it for good: a hung ovsdb-server or API
// server turns into a Ready=False report (or a log line) and a retry, never a stuck loop.
//
//   - one pass (Reconcile) is bounded by PassTimeout, the controller's ReconciliationTimeout;
//   - every API write (the status patch) by APICallTimeout on top; reads come from the
//     informer cache and never wait on the API server. A status patch after a pass that ran
//     out of time still gets APICallTimeout of its own, so the failure is reported;
//   - every OVSDB round trip by 10 s in package ovs, which also notices a hung ovsdb-server
//     within 3 s (echo probe) and then fails calls at once (FailFast), so the pass reports
//     OVSUnavailable within seconds; waits for ovs-vswitchd to apply a change are bounded by
//     10 s (2 s after an ordinary change), and each unixctl exchange by 5 s;
//   - the heartbeat (heartbeat.go) renews on its own goroutine, each renewal bounded by
//     HeartbeatRenewInterval, so a pass that takes long never stops the heartbeat.
const (
	PassTimeout    = 2 * time.Minute
	APICallTimeout = 10 * time.Second
)

// apiCtx bounds one API call. When the pass itself ran out of time (not when the agent is
// stopping), the call still gets its own APICallTimeout.
func apiCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		ctx = context.WithoutCancel(ctx)
	}
	return context.WithTimeout(ctx, APICallTimeout)
}
