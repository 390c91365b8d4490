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
	kerrors "k8s.io/apimachinery/pkg/util/errors"

	v1 "github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// DefaultAllocationWorkers is how many allocations of one IPAM pass run at once. Each is a
// chain of two sequential API requests (claim, NodeSubnet), so a sequential pass over 1,000
// new nodes is bound by round trips, not by the API server.
const DefaultAllocationWorkers = 16

// perNodeEventLimit: a pass that allocates at most this many subnets reports each on its Node
// (kubectl describe node shows it); a larger pass, a burst of joining nodes, reports them in
// one Event on the NetworkCluster instead of one POST per node that nobody reads one by one
// (every node's CIDR is in its NodeSubnet).
const perNodeEventLimit = 10

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

// allocateAll carries out a pass's allocations, up to Options.AllocationWorkers at once, then
// fences them all with one read of the claims (confirm). Candidates are picked in plan order
// before any request is made, so without contention nodes get the lowest free CIDRs in the
// order a sequential pass would give them; a worker whose candidate turns out to be claimed by
// someone else picks again. Concurrency needs no more than that: a CIDR's claim Lease can be
// created only once, which is what already keeps two operator replicas apart (claims.go).
// The claims are not adopted here: a later pass does that (splitAdoptions). Returns the nodes
// left out by exhaustion and the errors of the others.
func (r *NodeSubnetReconciler) allocateAll(ctx context.Context, log logr.Logger, nc *v1.NetworkCluster, pool Pool, used map[int]bool, allocs []allocation) (exhausted []string, errs []error) {
	pick := &picker{pool: pool, used: used}
	var mu sync.Mutex
	var created []allocated
	fail := func(a allocation, err error) {
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

	sem := make(chan struct{}, r.Options.AllocationWorkers)
	var wg sync.WaitGroup
	for i, a := range allocs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			got, err := r.allocate(ctx, log, pick, a, candidates[i])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				observeAllocation(a.Node, netip.Prefix{}, err, r.Options.Now())
				fail(a, err)
			case got.CIDR.IsValid():
				created = append(created, got)
			}
		}()
	}
	wg.Wait()

	kept, ferrs := r.confirm(ctx, log, created)
	errs = append(errs, ferrs...)
	for _, g := range kept {
		observeAllocation(g.Node, g.CIDR, nil, r.Options.Now())
	}
	r.reportAllocated(nc, kept)
	slices.Sort(exhausted) // stable Event messages
	return exhausted, errs
}

// reportAllocated writes the pass's SubnetAllocated Events (see perNodeEventLimit).
func (r *NodeSubnetReconciler) reportAllocated(nc *v1.NetworkCluster, kept []allocated) {
	if len(kept) <= perNodeEventLimit {
		for _, g := range kept {
			r.Recorder.Eventf(g.Node, nc, corev1.EventTypeNormal, ReasonSubnetAllocated, "Allocate",
				"node %s got pod subnet %s", g.Node.Name, g.CIDR)
		}
		return
	}
	names := make([]string, len(kept))
	for i, g := range kept {
		names[i] = g.Node.Name
	}
	r.Recorder.Eventf(nc, nil, corev1.EventTypeNormal, ReasonSubnetAllocated, "Allocate",
		"%d nodes got a pod subnet (each in its NodeSubnet): %s", len(kept), nameList(names))
}

// adoptAll carries out adoptions, up to Options.AllocationWorkers at once (each is one UPDATE
// of its own claim, so they are independent).
func (r *NodeSubnetReconciler) adoptAll(ctx context.Context, adopts []claimAdoption) error {
	sem := make(chan struct{}, r.Options.AllocationWorkers)
	var wg sync.WaitGroup
	errs := make([]error, len(adopts))
	for i, a := range adopts {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = r.adopt(ctx, a.Claim, a.Subnet)
		}()
	}
	wg.Wait()
	return kerrors.NewAggregate(errs)
}
