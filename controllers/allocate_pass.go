package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	v1 "github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// DefaultAllocationWorkers is how many allocations of one IPAM pass run at once. Each is a
// chain of four sequential API requests (claim, NodeSubnet, fence read, adoption), so a
// sequential pass over 1,000 new nodes is bound by round trips, not by the API server.
const DefaultAllocationWorkers = 16

// picker hands out free subnet indexes of one pass to concurrent allocations.
type picker struct {
	mu   sync.Mutex
	pool Pool
	used map[int]bool
}

// next marks the lowest free subnet used and returns it; ErrExhausted when none is left.
func (p *picker) next() (netip.Prefix, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	idx, pfx, err := p.pool.Next(p.used)
	if err != nil {
		return netip.Prefix{}, err
	}
	p.used[idx] = true
	return pfx, nil
}

// allocateAll carries out a pass's allocations, up to Options.AllocationWorkers at once.
// Candidates are picked in plan order before any request is made, so without contention
// nodes get the lowest free CIDRs in the order a sequential pass would give them; a worker
// whose candidate turns out to be claimed by someone else picks again. Concurrency needs no
// more than that: a CIDR's claim Lease can be created only once, which is what already keeps
// two operator replicas apart (claims.go). Returns the nodes left out by exhaustion and the
// errors of the others.
func (r *NodeSubnetReconciler) allocateAll(ctx context.Context, log logr.Logger, nc *v1.NetworkCluster, pool Pool, used map[int]bool, allocs []allocation) (exhausted []string, errs []error) {
	pick := &picker{pool: pool, used: used}
	var mu sync.Mutex
	fail := func(a allocation, err error) {
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, ErrExhausted) {
			exhausted = append(exhausted, a.Node.Name)
			return
		}
		errs = append(errs, fmt.Errorf("allocating a subnet for node %s: %w", a.Node.Name, err))
	}

	candidates := make([]netip.Prefix, len(allocs))
	for i, a := range allocs {
		if a.Resume != nil {
			continue
		}
		c, err := pick.next()
		if err != nil {
			break // exhausted: the workers find out one by one, and report it
		}
		candidates[i] = c
	}

	workers := r.Options.AllocationWorkers
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, a := range allocs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cidr, err := r.allocate(ctx, log, pick, a, candidates[i])
			observeAllocation(a.Node, cidr, err, r.Options.Now())
			switch {
			case err != nil:
				fail(a, err)
			case cidr.IsValid():
				r.Recorder.Eventf(a.Node, nc, corev1.EventTypeNormal, ReasonSubnetAllocated, "Allocate",
					"node %s got pod subnet %s", a.Node.Name, cidr)
			}
		}()
	}
	wg.Wait()
	slices.Sort(exhausted) // stable Event messages
	return exhausted, errs
}
