package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// errBlocksBusy: every free subnet is in a block another allocator holds (blocks.go). Not
// exhaustion: the pass leaves the node for a later pass.
var errBlocksBusy = errors.New("every free node subnet is in a block another allocator holds")

// picker hands out the free subnets of one pass to concurrent allocations, lowest first, from
// blocks the pass holds, acquiring the next block when it needs one (blocks.go has the
// protocol). Its state is the pass's: rebuilt from the API server by every pass.
type picker struct {
	c         client.Client
	reader    client.Reader // uncached, for the re-list after a takeover
	log       logr.Logger
	namespace string
	me        string
	duration  time.Duration
	now       func() time.Time
	pool      Pool

	mu        sync.Mutex
	used      map[int]bool
	from      int           // every index below is used
	known     map[int]block // the pass's listing of the blocks
	held      map[int]block // acquired or renewed by this pass, as last written
	skip      map[int]bool  // busy, or lost to another allocator: not tried again in this pass
	floor     map[int]int32 // maxEpochs of the pass's NodeSubnets
	busyUntil time.Time     // the earliest expiry of a busy block with free subnets
}

// newPicker: used is the pass's used set (its NodeSubnets), blocks its listing of the block
// Leases, taken before the NodeSubnets, floor maxEpochs of those NodeSubnets.
func (r *IPAMReconciler) newPicker(log logr.Logger, pool Pool, blocks map[int]block, used map[int]bool, floor map[int]int32) *picker {
	return &picker{
		c: r.Client, reader: r.APIReader, log: log, namespace: r.Options.Namespace, me: r.Options.Identity,
		duration: r.Options.BlockLeaseDuration, now: r.Options.Now, pool: pool,
		used: used, known: blocks, held: map[int]block{}, skip: map[int]bool{}, floor: floor,
	}
}

// next marks the lowest free subnet of a block this pass holds used and returns it with its
// block; ErrExhausted when no subnet is free, errBlocksBusy when the free ones are all in
// blocks other allocators hold. Lowest first keeps the choice deterministic (a pass hands out
// what a sequential one would) and reuses released subnets first.
func (p *picker) next(ctx context.Context) (netip.Prefix, block, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	busy := false
	for i := p.from; i < p.pool.Size(); {
		if p.used[i] {
			if i == p.from {
				p.from++
			}
			i++
			continue
		}
		b := p.pool.BlockOf(i)
		if p.skip[b] {
			busy = true
			_, i = p.pool.BlockRange(b)
			continue
		}
		hb, ok := p.held[b]
		if !ok {
			if err := p.acquire(ctx, b); err != nil {
				return netip.Prefix{}, block{}, err
			}
			continue // look at i again: a takeover re-lists, a refusal skips the block
		}
		p.used[i] = true
		return p.pool.Subnet(i), hb, nil
	}
	if busy {
		return netip.Prefix{}, block{}, errBlocksBusy
	}
	return netip.Prefix{}, block{}, ErrExhausted
}

// holds: block b is still held by this pass in epoch (a renewal may have found it lost).
func (p *picker) holds(b block) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.held[b.Index]
	return ok && h.UID == b.UID && h.Epoch == b.Epoch
}

// acquire makes block b held by this pass, or skipped (p.mu held). Each write carries the
// resourceVersion of the pass's listing (blocks.go: why that is enough but for a takeover).
func (p *picker) acquire(ctx context.Context, b int) error {
	k, known := p.known[b]
	now := p.now()
	var l *coordinationv1.Lease
	var err error
	action := blockStep(k, known, p.me, now)
	switch action {
	case blockBusy:
		p.skip[b] = true
		if until := k.Renewed.Add(k.Duration); k.Duration > 0 && (p.busyUntil.IsZero() || until.Before(p.busyUntil)) {
			p.busyUntil = until
		}
		p.log.V(1).Info("subnet block held by another allocator", "block", p.pool.BlockCIDR(b), "holder", k.Holder)
		return nil
	case blockCreate:
		epoch := int32(0)
		if f, ok := p.floor[b]; ok {
			epoch = f + 1
		}
		l = newBlockLease(p.namespace, p.pool, b, p.me, epoch, now, p.duration)
		err = p.c.Create(ctx, l)
	case blockRenew:
		l = k.Lease.DeepCopy()
		hold(l, p.me, k.Epoch, now, p.duration, false)
		err = p.c.Update(ctx, l)
	case blockTakeOver:
		epoch := k.Epoch + 1
		if f, ok := p.floor[b]; ok && f >= epoch {
			epoch = f + 1
		}
		l = k.Lease.DeepCopy()
		hold(l, p.me, epoch, now, p.duration, true)
		err = p.c.Update(ctx, l)
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// Another allocator wrote the block since the pass listed it: the next pass decides.
		p.skip[b] = true
		p.log.V(1).Info("subnet block changed since the pass listed it, leaving it", "block", p.pool.BlockCIDR(b))
		return nil
	}
	if err != nil {
		return fmt.Errorf("acquiring subnet block %s: %w", p.pool.BlockCIDR(b), err)
	}
	h := blockOf(b, l)
	p.held[b] = h
	if action != blockTakeOver {
		return nil
	}
	p.log.Info("took over a subnet block", "block", p.pool.BlockCIDR(b), "from", k.Holder, "epoch", h.Epoch)
	// The previous holder may have created NodeSubnets after the pass listed them.
	var subnets v1alpha1.NodeSubnetList
	if err := p.reader.List(ctx, &subnets); err != nil {
		return fmt.Errorf("listing NodeSubnets after taking over subnet block %s: %w", p.pool.BlockCIDR(b), err)
	}
	for i := range subnets.Items {
		if idx, ok := p.pool.ParseIndex(subnets.Items[i].Spec.CIDR); ok {
			p.used[idx] = true
		}
	}
	return nil
}

// renewDue renews the held blocks whose last write is older than a third of the lease
// duration, so that no other allocator takes them over while the pass still has NodeSubnets
// to create or to fence. The writes run outside p.mu (acquire never writes a held block); a
// block another allocator wrote meanwhile is lost for the pass, and the fence refuses what was
// created in it after that.
func (p *picker) renewDue(ctx context.Context) {
	p.mu.Lock()
	now := p.now()
	var due []block
	for _, h := range p.held {
		if now.Sub(h.Renewed) >= p.duration/3 {
			due = append(due, h)
		}
	}
	p.mu.Unlock()
	for _, h := range due {
		l := h.Lease.DeepCopy()
		hold(l, p.me, h.Epoch, p.now(), p.duration, false)
		err := p.c.Update(ctx, l)
		p.mu.Lock()
		switch {
		case err == nil:
			p.held[h.Index] = blockOf(h.Index, l)
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			delete(p.held, h.Index)
			p.skip[h.Index] = true
			p.log.Info("lost a subnet block while allocating", "block", p.pool.BlockCIDR(h.Index), "reason", err.Error())
		default:
			p.log.Error(err, "renewing a subnet block", "block", p.pool.BlockCIDR(h.Index))
		}
		p.mu.Unlock()
	}
}

// keepRenewed runs renewDue in the background until the returned stop is called.
func (p *picker) keepRenewed(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(p.duration/15, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.renewDue(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// heldCount is the number of blocks the pass holds.
func (p *picker) heldCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// recheck is when a pass that left nodes waiting for busy blocks should look again.
func (p *picker) recheck() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busyUntil.IsZero() {
		return 0
	}
	return max(p.busyUntil.Sub(p.now()), 0) + 100*time.Millisecond
}
