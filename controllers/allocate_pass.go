package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// DefaultAllocationWorkers is how many allocations of one IPAM pass run at once. Each is one
// API request (the NodeSubnet create, blocks.go), so a sequential pass over 1,000 new nodes
// would be bound by round trips, not by the API server. 32: about what
// kube-controller-manager's node IPAM runs (30 CIDR update workers); API Priority and Fairness
// queues them should the API server be busy.
const DefaultAllocationWorkers = 32

// perNodeEventLimit: a pass that allocates at most this many subnets reports each on its Node
// (kubectl describe node shows it); a larger pass, a burst of joining nodes, reports them in
// one Event on the NetworkCluster instead of one POST per node that nobody reads one by one
// (every node's CIDR is in its NodeSubnet).
const perNodeEventLimit = 10

// allocateAll carries out a round of allocations, up to Options.AllocationWorkers at once,
// and returns the NodeSubnets created, still to be fenced (allocateRounds). Candidates are
// picked in plan order before any request is made, so without contention nodes get the lowest
// free CIDRs in the order a sequential pass would give them; a worker whose candidate's block
// was lost meanwhile picks again. Concurrency needs no more than that: the picker hands out
// only subnets of blocks this allocator holds (blocks.go). Also returns the nodes left out by
// exhaustion, the number left waiting for blocks other allocators hold, and the errors of the
// others.
func (r *IPAMReconciler) allocateAll(ctx context.Context, log logr.Logger, pick *picker, allocs []allocation) (created []allocated, exhausted []string, waiting int, errs []error) {
	var mu sync.Mutex
	fail := func(a allocation, err error) {
		switch {
		case errors.Is(err, ErrExhausted):
			exhausted = append(exhausted, a.Node.Name)
		case errors.Is(err, errBlocksBusy):
			waiting++
		default:
			errs = append(errs, fmt.Errorf("allocating a subnet for node %s: %w", a.Node.Name, err))
		}
	}

	type candidate struct {
		cidr  netip.Prefix
		block block
	}
	candidates := make([]candidate, len(allocs))
	for i := range allocs {
		c, b, err := pick.next(ctx)
		if err != nil {
			break // the workers find out one by one, and report it
		}
		candidates[i] = candidate{c, b}
	}

	var g errgroup.Group
	g.SetLimit(r.Options.AllocationWorkers)
	for i, a := range allocs {
		g.Go(func() error {
			got, err := r.allocate(ctx, log, pick, a, candidates[i].cidr, candidates[i].block)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				if !errors.Is(err, errBlocksBusy) {
					observeAllocation(a.Node, netip.Prefix{}, err, r.Options.Now())
				}
				fail(a, err)
			case got.CIDR.IsValid():
				created = append(created, got)
			}
			return nil // every node's error is collected, none stops the others
		})
	}
	_ = g.Wait()
	return created, exhausted, waiting, errs
}

// passRounds bounds how long a pass keeps allocating nodes that joined while it ran
// (allocateRounds): long enough that a burst of joins is served by a few passes rather than
// one per batch, short enough that the rest of a pass's plan (releases, NodeIP changes) is
// recomputed from fresh listings every few seconds.
const passRounds = 10 * time.Second

// allocateRounds carries out the plan's allocations, then, as long as the previous round
// allocated something and within passRounds, those of the nodes that joined meanwhile
// (arrivals, from the cache), then fences all of them with one read (confirm: a read after
// the last create serves every earlier one too). A new round is worth it because it skips what
// a new pass would cost first: the uncached listings of every block and NodeSubnet. It stops
// when the NetworkCluster in the cache is no longer the one the pass planned for (changed
// spec, being deleted), on exhaustion and on errors: the next pass then decides from the API
// server. The blocks the pass holds are renewed until its fence is read.
func (r *IPAMReconciler) allocateRounds(ctx context.Context, log logr.Logger, nc *v1alpha1.NetworkCluster, pick *picker, sel labels.Selector, handled map[string]bool, batch []allocation) (exhausted []string, waiting int, errs []error) {
	var created []allocated
	start, rounds := time.Now(), 1
	stopRenewing := pick.keepRenewed(ctx)
	for len(batch) > 0 {
		for _, a := range batch {
			handled[a.Node.Name] = true
		}
		cr, ex, w, es := r.allocateAll(ctx, log, pick, batch)
		created, exhausted, waiting, errs = append(created, cr...), append(exhausted, ex...), waiting+w, append(errs, es...)
		if len(ex) > 0 || w > 0 || len(es) > 0 || time.Since(start) > passRounds || !r.samePlan(ctx, nc) {
			break
		}
		// Read only (arrivals and the allocations only read the Nodes), so the cache's
		// objects are not deep-copied: a round runs every few dozen joins during a burst,
		// and copying every cached Node each time was most of the operator's CPU there.
		var nodes corev1.NodeList
		if err := r.Client.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
			errs = append(errs, err)
			break
		}
		batch = arrivals(nodes.Items, sel, handled)
		rounds++
	}
	kept, ferrs := r.confirm(ctx, log, pick.pool, created)
	stopRenewing()
	if len(created) > 0 {
		log.Info("allocation pass", "created", len(created), "confirmed", len(kept), "rounds", rounds, "blocks", pick.heldCount(), "took", time.Since(start).Round(time.Millisecond))
	}
	errs = append(errs, ferrs...)
	for _, g := range kept {
		observeAllocation(g.Node, g.CIDR, nil, r.Options.Now())
	}
	r.reportAllocated(nc, kept)
	slices.Sort(exhausted) // stable Event messages
	return exhausted, waiting, errs
}

// samePlan: the cached NetworkCluster is still the object and generation the pass planned for.
func (r *IPAMReconciler) samePlan(ctx context.Context, nc *v1alpha1.NetworkCluster) bool {
	cur := &v1alpha1.NetworkCluster{}
	if err := r.Client.Get(ctx, clusterKey, cur); err != nil {
		return false
	}
	return cur.UID == nc.UID && cur.Generation == nc.Generation && cur.DeletionTimestamp == nil
}

// reportAllocated writes the pass's SubnetAllocated Events (see perNodeEventLimit).
func (r *IPAMReconciler) reportAllocated(nc *v1alpha1.NetworkCluster, kept []allocated) {
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
