package ovs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
)

// Deadlines. Every round trip to ovsdb-server has one, and a server that stops answering
// is noticed within probeInterval + probeTimeout (3 s) even when the client is idle:
//
//   - the prober sends an OVSDB echo every probeInterval; one unanswered for probeTimeout
//     marks the connection down: Connected turns false at once, transactions in flight
//     and waiting reads end with ErrUnavailable, Changes fires (so a caller re-runs and
//     reports), and the connection is dropped and redialled (the usual reconnect);
//   - every transaction is bounded by callTimeout on top of its caller's context.
//
// A killed ovsdb-server closes the socket, which libovsdb notices at once; the prober is
// for a server that hangs (stopped, deadlocked, its host thrashing), whose socket stays
// open and whose cache looks current. libovsdb's own inactivity probe (WithInactivityCheck)
// is not used: it needs the reconnect timeout below the probe interval, and a reconnect
// (schema and the whole monitored cache) must be allowed longer than 3 s.
const (
	probeInterval = time.Second
	probeTimeout  = 2 * time.Second
	callTimeout   = 10 * time.Second
)

// ErrUnavailable is wrapped by the errors of calls that failed because ovsdb-server is not
// connected or does not answer (as opposed to rejecting a transaction).
var ErrUnavailable = errors.New("ovsdb-server unavailable")

// liveness is the connection epoch: ctx ends when the current connection is declared
// down, and a new epoch starts with every completed (re)connect.
type liveness struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (l *liveness) current() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx
}

// renew starts a new epoch (after a completed connect).
func (l *liveness) renew() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel(nil)
	}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
}

// end ends the current epoch with cause.
func (l *liveness) end(cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel(cause)
	}
}

// markDown records that the connection does not work: Connected turns false, calls of the
// current epoch are cancelled, and Changes fires. It is idempotent per episode.
func (c *Client) markDown(cause error) {
	if c.up.Swap(false) {
		c.log.Info("ovsdb-server connection down", "reason", cause.Error())
	}
	c.live.end(fmt.Errorf("%w: %w", ErrUnavailable, cause))
	c.notify()
}

// markUp starts a new epoch for a connection that works.
func (c *Client) markUp() {
	c.live.renew()
	c.up.Store(true)
}

// probe echoes to ovsdb-server every probeInterval while the connection is up, and drops
// a connection whose echo goes unanswered, so that libovsdb redials.
func (c *Client) probe() {
	defer c.probeDone.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if !c.up.Load() {
			continue // reconnecting: the watcher marks it up again
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := c.ovs.Echo(ctx)
		cancel()
		if err == nil || c.closed.Load() {
			continue
		}
		if errors.Is(err, client.ErrNotConnected) {
			// libovsdb is already reconnecting; its backoff Reset marks it down too.
			c.markDown(err)
			continue
		}
		c.markDown(fmt.Errorf("no answer to an echo within %v: %w", probeTimeout, err))
		// Disconnect waits for calls holding the connection; markDown cancelled them. In a
		// goroutine all the same, so that the prober never hangs on libovsdb's lock.
		go c.ovs.Disconnect()
	}
}

// notConnected is the error of a call made while the connection is down.
func (c *Client) notConnected() error {
	if cause := context.Cause(c.live.current()); cause != nil {
		return fmt.Errorf("ovs: not connected to ovsdb-server at %s: %w", c.socket, cause)
	}
	return fmt.Errorf("ovs: not connected to ovsdb-server at %s: %w", c.socket, ErrUnavailable)
}

// boundCall returns ctx bounded by callTimeout and by the connection epoch, and the epoch
// (for unavailable).
func (c *Client) boundCall(ctx context.Context) (context.Context, context.Context, context.CancelFunc) {
	epoch := c.live.current()
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	stop := context.AfterFunc(epoch, cancel)
	return ctx, epoch, func() { stop(); cancel() }
}

// unavailable wraps a failed round trip's err with ErrUnavailable when the connection was
// the cause (lost, declared down during the call, or no answer in time), and leaves the
// caller's own cancellation and the server's rejections as they are.
func unavailable(parent, epoch context.Context, err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || parent.Err() != nil {
		return err
	}
	if cause := context.Cause(epoch); cause != nil {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	if errors.Is(err, client.ErrNotConnected) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: no answer within %v: %w", ErrUnavailable, callTimeout, err)
	}
	return err
}
