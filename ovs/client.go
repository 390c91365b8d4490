package ovs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	libmodel "github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovsmesh/ovsmesh/ovs/model"
)

// DefaultSocket is where ovsdb-server listens on a standard installation.
const DefaultSocket = "/var/run/openvswitch/db.sock"

const (
	// connectTimeout bounds one connection attempt (dial, schema, monitor).
	connectTimeout = 10 * time.Second
	// Reconnect backoff: fast at first (an ovsdb-server restart takes well under a
	// second), then at most every maxBackoff, and never giving up.
	initialBackoff = 100 * time.Millisecond
	maxBackoff     = 5 * time.Second
	// watchInterval is how often the connection watcher looks for a completed reconnect.
	watchInterval = 50 * time.Millisecond
)

// Options configures Dial.
type Options struct {
	// Socket is the path of ovsdb-server's unix socket. Default DefaultSocket.
	Socket string
	// Logger receives connection events (connected, lost, reconnected). The zero
	// Logger discards them.
	Logger logr.Logger
	// FailFast makes calls return ErrUnavailable at once while the client is not
	// connected, instead of waiting (bounded by their context) for the reconnect. For a
	// caller that reports the outage and runs again when Changes announces the reconnect.
	FailFast bool
	// ObserveTransaction, when set, is told the outcome of every transaction sent to
	// ovsdb-server (not the ones refused before sending): how many operations, how long the
	// round trip took, and its error. The agent turns it into metrics; this package stays
	// OVSDB only.
	ObserveTransaction func(ops int, took time.Duration, err error)
}

// Client is a connection to the Open_vSwitch database with a local cache of the four
// tables ovsmesh reads (Open_vSwitch, Bridge, Port, Interface), kept current by an OVSDB
// monitor. All reads come from the cache; all writes are transactions built from
// operations (see Transact). It is safe for concurrent use.
//
// When ovsdb-server goes away the client reconnects with exponential backoff (100 ms up
// to 5 s, forever), re-establishes the monitor and so re-reads the cache; reads wait for
// that, and transactions block until reconnected or their context ends. A server that
// hangs without closing the socket is noticed by an echo probe within 3 s and treated the
// same (liveness.go). Changes reports ordinary changes, a lost connection and completed
// reconnects, so an agent reports the loss at once and reapplies its desired state
// whenever OVS restarts.
type Client struct {
	ovs      client.Client
	log      logr.Logger
	socket   string
	failFast bool
	observe  func(ops int, took time.Duration, err error)

	changes chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool

	// Connection bookkeeping: lost counts reconnect episodes libovsdb started (it resets
	// the backoff at the start of each), reconnects those the watcher saw complete.
	lost       atomic.Uint64
	reconnects atomic.Uint64
	// up: the connection works as far as the client knows (see liveness.go); live is its
	// epoch, which calls are bound to.
	up        atomic.Bool
	live      liveness
	probeDone sync.WaitGroup

	syncMu   sync.Mutex // serialises SyncTunnels: each plans against the result of the last
	nameSeq  atomic.Uint64
	closeOne sync.Once
}

// Dial connects to ovsdb-server, starts monitoring the Open_vSwitch, Bridge, Port and
// Interface tables and returns once the cache holds their current contents. A missing
// socket is reported at once with its path (Dial does not wait for ovsdb-server to
// appear; callers retry). ctx, and connectTimeout, bound the initial connection only.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if err := checkSocket(opts.Socket); err != nil {
		return nil, err
	}
	dbModel, err := model.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("ovs: database model: %w", err)
	}
	c := &Client{
		log:      opts.Logger.WithValues("socket", opts.Socket),
		socket:   opts.Socket,
		failFast: opts.FailFast,
		observe:  opts.ObserveTransaction,
		changes:  make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	libLog := c.log.WithName("libovsdb")
	c.ovs, err = client.NewOVSDBClient(dbModel,
		client.WithEndpoint("unix:"+opts.Socket),
		client.WithReconnect(connectTimeout, &reconnectBackoff{c: c}),
		client.WithLogger(&libLog),
	)
	if err != nil {
		return nil, fmt.Errorf("ovs: %w", err)
	}
	if err := c.ovs.Connect(ctx); err != nil {
		return nil, fmt.Errorf("ovs: connect to ovsdb-server at %s: %w", opts.Socket, err)
	}
	// The cache object survives reconnects (libovsdb purges and refills it), so one
	// handler registration lasts for the life of the client.
	c.ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, libmodel.Model) { c.notify() },
		UpdateFunc: func(table string, old, new libmodel.Model) { c.onUpdate(table, old, new) },
		DeleteFunc: func(string, libmodel.Model) { c.notify() },
	})
	if _, err := c.ovs.Monitor(ctx, c.newMonitor()); err != nil {
		c.ovs.Close()
		return nil, fmt.Errorf("ovs: monitor %s: %w", opts.Socket, err)
	}
	c.markUp()
	go c.watch()
	c.probeDone.Add(1)
	go c.probe()
	c.log.V(1).Info("connected to ovsdb-server")
	return c, nil
}

// checkSocket turns the common failure, ovsdb-server not running, into an error that
// names the path instead of a bare "connection refused" from deep inside libovsdb.
func checkSocket(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("ovs: OVSDB socket %s does not exist: is ovsdb-server running? (set Options.Socket for a non-default path)", path)
	case err != nil:
		return fmt.Errorf("ovs: OVSDB socket %s: %w", path, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("ovs: %s is not a unix socket (mode %s)", path, fi.Mode())
	}
	return nil
}

// newMonitor asks only for the columns ovsmesh reads. Leaving out statistics and the
// cfg counters keeps the cache small and stops ovs-vswitchd's periodic statistics
// writes from waking the agent every few seconds.
func (c *Client) newMonitor() *client.Monitor {
	ovsRow := &model.OpenvSwitch{}
	br := &model.Bridge{}
	port := &model.Port{}
	iface := &model.Interface{}
	return c.ovs.NewMonitor(
		client.WithTable(ovsRow, &ovsRow.UUID, &ovsRow.Bridges, &ovsRow.ExternalIDs, &ovsRow.OVSVersion),
		client.WithTable(br, &br.UUID, &br.Name, &br.Ports, &br.DatapathType, &br.STPEnable,
			&br.RSTPEnable, &br.FailMode, &br.OtherConfig, &br.ExternalIDs, &br.Status, &br.RSTPStatus),
		client.WithTable(port, &port.UUID, &port.Name, &port.Interfaces, &port.ExternalIDs,
			&port.Status, &port.RSTPStatus, &port.Protected),
		client.WithTable(iface, &iface.UUID, &iface.Name, &iface.Type, &iface.Options, &iface.BFD,
			&iface.BFDStatus, &iface.ExternalIDs, &iface.Error, &iface.Ofport, &iface.LinkState, &iface.Ifindex),
	)
}

// Changes delivers a value after the monitored tables changed (rows ovsmesh wrote
// included), when the connection is lost or found hung, and after every completed
// reconnect. Notifications are coalesced: one
// pending value stands for any number of changes, so a receiver re-reads everything it
// cares about rather than counting. The STP "seconds in state" counter that
// ovs-vswitchd rewrites every few seconds is not a change.
func (c *Client) Changes() <-chan struct{} { return c.changes }

// Reconnects is how many times the client has reconnected since Dial.
func (c *Client) Reconnects() uint64 { return c.reconnects.Load() }

// Connected reports whether the client currently has a working connection and a
// current cache: false from the moment the connection is lost or its probe goes
// unanswered until a reconnect has completed. It never blocks.
func (c *Client) Connected() bool {
	return !c.closed.Load() && c.up.Load()
}

// Close disconnects and stops reconnecting. It is safe to call more than once.
func (c *Client) Close() {
	c.closeOne.Do(func() {
		c.closed.Store(true)
		close(c.stop)
		<-c.done
		c.probeDone.Wait()
		c.live.end(errors.New("ovs: client is closed"))
		c.ovs.Close()
	})
}

func (c *Client) notify() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

func (c *Client) onUpdate(table string, old, new libmodel.Model) {
	if table == model.PortTable {
		o, ok1 := old.(*model.Port)
		n, ok2 := new.(*model.Port)
		if ok1 && ok2 && onlySecondsInStateChanged(o, n) {
			return
		}
	}
	c.notify()
}

// onlySecondsInStateChanged reports whether two versions of a Port differ only in
// status:stp_sec_in_state, which ovs-vswitchd refreshes with its statistics.
func onlySecondsInStateChanged(o, n *model.Port) bool {
	if len(o.Status) != len(n.Status) {
		return false
	}
	for k, v := range o.Status {
		if nv, ok := n.Status[k]; !ok || (nv != v && k != "stp_sec_in_state") {
			return false
		}
	}
	oc, nc := *o, *n
	oc.Status, nc.Status = nil, nil
	return oc.Equals(&nc)
}

// watch notices completed reconnects. libovsdb does not announce them; it starts each
// reconnect episode by resetting our backoff (which counts c.lost) and clears its
// current endpoint until the connection, monitor and cache are back.
func (c *Client) watch() {
	defer close(c.done)
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var handled uint64
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		lost := c.lost.Load()
		// libovsdb keeps its "connected" flag set while it reconnects; the current
		// endpoint is cleared instead (and reading it waits for a connect attempt).
		if lost == handled || c.ovs.CurrentEndpoint() == "" {
			continue
		}
		handled = lost
		c.markUp()
		n := c.reconnects.Add(1)
		c.log.Info("reconnected to ovsdb-server; cache re-read", "reconnects", n)
		c.notify()
	}
}

// reconnectBackoff is the backoff libovsdb uses between reconnect attempts. It never
// returns backoff.Stop: libovsdb panics when its reconnect loop gives up.
type reconnectBackoff struct {
	c  *Client
	mu sync.Mutex
	b  *backoff.ExponentialBackOff
}

func (r *reconnectBackoff) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		r.b = backoff.NewExponentialBackOff()
		r.b.InitialInterval = initialBackoff
		r.b.MaxInterval = maxBackoff
		r.b.MaxElapsedTime = 0 // never give up
	}
	r.b.Reset()
	if !r.c.closed.Load() {
		r.c.lost.Add(1)
		r.c.markDown(errors.New("lost connection to ovsdb-server; reconnecting"))
	}
}

func (r *reconnectBackoff) NextBackOff() time.Duration {
	if r.c.closed.Load() {
		// Closed while disconnected: libovsdb's Close cannot stop a reconnect loop that
		// is already running, so park it.
		return 24 * time.Hour
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		return initialBackoff
	}
	return r.b.NextBackOff()
}

// waitConnected blocks until the client is connected with a current cache, so that
// reads after an ovsdb-server restart do not plan against the old cache.
func (c *Client) waitConnected(ctx context.Context) error {
	for {
		if c.closed.Load() {
			return errors.New("ovs: client is closed")
		}
		if c.Connected() {
			return nil
		}
		if c.failFast {
			return c.notConnected()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovs: waiting for the connection to ovsdb-server at %s: %w: %w", c.socket, ErrUnavailable, ctx.Err())
		case <-time.After(watchInterval):
		}
	}
}

// namedUUID returns a fresh uuid-name for a row inserted by an operation. Names are
// unique per client so operations from several builders can share one transaction.
func (c *Client) namedUUID(kind string) string {
	return fmt.Sprintf("ovsmesh_%s_%d", kind, c.nameSeq.Add(1))
}
