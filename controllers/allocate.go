package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// allocated is a NodeSubnet an allocation created, with the block it was created under. It is
// not confirmed until confirm has seen that block still held by the allocator, in that epoch,
// after the create.
type allocated struct {
	Node     *corev1.Node
	CIDR     netip.Prefix
	Block    int
	BlockUID types.UID
	Epoch    int32
	Subnet   *v1alpha1.NodeSubnet
}

// allocate gives node a.Node a NodeSubnet with the candidate subnet (picked from block cb), or
// with the next one pick hands out: one request, the create. The result still has to pass the
// fence (confirm). Returns an invalid CIDR if another replica created the node's NodeSubnet
// first. Safe to run concurrently for different nodes.
func (r *IPAMReconciler) allocate(ctx context.Context, log logr.Logger, pick *picker, a allocation, candidate netip.Prefix, cb block) (allocated, error) {
	cidr, b := candidate, cb
	if !cidr.IsValid() || !pick.holds(b) {
		// No candidate, or its block was lost since it was picked: a NodeSubnet created
		// from it now would only be taken back by the fence.
		var err error
		if cidr, b, err = pick.next(ctx); err != nil {
			return allocated{}, err
		}
	}
	ns := &v1alpha1.NodeSubnet{
		ObjectMeta: metav1.ObjectMeta{
			Name:        a.Node.Name,
			Labels:      managedLabels(),
			Annotations: map[string]string{AnnotationBlockEpoch: strconv.Itoa(int(b.Epoch))},
			// The Node owns its NodeSubnet: the garbage collector removes it with the node
			// even when the operator is not running.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.Node.Name, UID: a.Node.UID}},
		},
		Spec: v1alpha1.NodeSubnetSpec{
			NodeName: a.Node.Name,
			CIDR:     cidr.String(),
			Gateway:  Gateway(cidr).String(),
			NodeIP:   a.IP.String(),
		},
	}
	if err := r.Client.Create(ctx, ns); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return allocated{}, err
		}
		// Another replica created this node's NodeSubnet first. Never overwrite it; the CIDR
		// picked for it stays free (the next pass sees it unused).
		log.Info("NodeSubnet created concurrently by another allocator", "node", a.Node.Name)
		return allocated{}, nil
	}
	return allocated{Node: a.Node, CIDR: cidr, Block: b.Index, BlockUID: b.UID, Epoch: b.Epoch, Subnet: ns}, nil
}

// confirm is the fence (blocks.go) for all NodeSubnets a pass created, in one uncached read of
// the blocks taken after the last of them was created: each one's block must still be held
// by this allocator in the epoch it was created under. A NodeSubnet whose block changed hands
// meanwhile (only possible after a stall longer than the lease duration, an uninstall, or a
// person deleting the block's Lease) may share its CIDR with another node's now, so it is
// taken back and its node allocated afresh by the next pass. Returns the confirmed
// allocations. If the read itself fails nothing is confirmed or taken back: the pass fails
// and the next one decides from the API server (a CIDR two NodeSubnets share stays with the
// later epoch, pickKeeper).
func (r *IPAMReconciler) confirm(ctx context.Context, log logr.Logger, pool Pool, created []allocated) (kept []allocated, errs []error) {
	if len(created) == 0 {
		return nil, nil
	}
	leases, err := r.listBlockLeases(ctx)
	if err != nil {
		return nil, []error{fmt.Errorf("fencing %d new NodeSubnets: %w", len(created), err)}
	}
	blocks, _ := parseBlocks(pool, leases)
	for _, g := range created {
		if b, ok := blocks[g.Block]; ok && b.UID == g.BlockUID && b.Holder == r.Options.Identity && b.Epoch == g.Epoch {
			kept = append(kept, g)
			log.Info("allocated node subnet", "node", g.Node.Name, "cidr", g.CIDR, "gateway", g.Subnet.Spec.Gateway, "nodeIP", g.Subnet.Spec.NodeIP)
			continue
		}
		log.Info("subnet block changed hands while creating the NodeSubnet; taking it back", "node", g.Node.Name, "cidr", g.CIDR, "block", pool.BlockCIDR(g.Block))
		uid := g.Subnet.UID
		if derr := r.Client.Delete(ctx, g.Subnet, client.Preconditions{UID: &uid}); client.IgnoreNotFound(derr) != nil && !apierrors.IsConflict(derr) {
			errs = append(errs, derr)
			continue
		}
		err := fmt.Errorf("subnet block %s changed hands during allocation", pool.BlockCIDR(g.Block))
		observeAllocation(g.Node, netip.Prefix{}, err, r.Options.Now())
		errs = append(errs, fmt.Errorf("allocating a subnet for node %s: %w", g.Node.Name, err))
	}
	return kept, errs
}
