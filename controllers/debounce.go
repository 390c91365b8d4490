package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// statusInterval is the least time between two NetworkCluster passes that Node, NodeSubnet and
// heartbeat events start. Each pass recomputes the status from the whole cluster, so during a
// burst of joins (thousands of Node and NodeSubnet events in seconds) a pass per second
// reports what a pass per event would, a second later at most, for a fraction of the CPU on
// the operator and the API server (BENCHMARKS.md, section 1). The first event after a quiet
// second starts a pass at once.
const statusInterval = time.Second

// pacer spaces the enqueues of the cluster key at least an interval apart: an event is
// enqueued at once when the last slot is an interval old, else for the next slot. Every event
// is enqueued (the queue keeps one entry per key, the earliest): an entry that is already
// there may be handed out before this event, so skipping the enqueue could lose it.
type pacer struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	last     time.Time // the latest slot, passed or scheduled
}

// delay is how long to wait before enqueueing an event seen now.
func (p *pacer) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	switch {
	case p.last.IsZero() || now.Sub(p.last) >= p.interval:
		p.last = now
	case !now.Before(p.last):
		p.last = p.last.Add(p.interval) // the last slot may have begun: the next one
	}
	return p.last.Sub(now)
}

// handler maps every event to the cluster key, paced.
func (p *pacer) handler() handler.EventHandler {
	req := reconcile.Request{NamespacedName: clusterKey}
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if d := p.delay(); d > 0 {
			q.AddAfter(req, d)
		} else {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, _ event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		UpdateFunc: func(_ context.Context, _ event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		DeleteFunc: func(_ context.Context, _ event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		GenericFunc: func(_ context.Context, _ event.TypedGenericEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
	}
}
