package controllers

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// allocated is a NodeSubnet an allocation created, with the claim it was created under. It is
// not confirmed until confirm has seen that claim still in place after the create.
type allocated struct {
	Node      *corev1.Node
	CIDR      netip.Prefix
	ClaimName string
	ClaimUID  types.UID
	Subnet    *v1alpha1.NodeSubnet
	Claim     *coordinationv1.Lease // as confirm read it (for the adoption)
}

// allocate gives node a.Node a NodeSubnet: claim a CIDR (candidate first, then whatever pick
// hands out; or resume an earlier claim), then create the NodeSubnet. Two requests on the
// happy path. The result still has to pass the fence (confirm). Returns an invalid CIDR if
// another replica created the node's NodeSubnet first. Safe to run concurrently for
// different nodes.
func (r *IPAMReconciler) allocate(ctx context.Context, log logr.Logger, pick *picker, a allocation, candidate netip.Prefix) (allocated, error) {
	var cl *coordinationv1.Lease
	var cidr netip.Prefix
	if a.Resume != nil {
		cl, cidr = a.Resume.Lease, a.Resume.CIDR
		log.Info("resuming an earlier subnet claim", "node", a.Node.Name, "cidr", cidr)
	} else {
		next := candidate
		for {
			if !next.IsValid() {
				var err error
				if next, err = pick.next(); err != nil {
					return allocated{}, err
				}
			}
			l := newClaim(r.Options.Namespace, next, a.Node.Name, nil)
			err := r.Client.Create(ctx, l)
			if apierrors.IsAlreadyExists(err) {
				// Another allocator holds this CIDR. If it claimed it for this same node
				// (two replicas working through the same new nodes), join that claim rather
				// than take a second subnet: both then create the same NodeSubnet and one
				// create wins. Otherwise the CIDR stays used: try the next one.
				if other, ok := r.claimFor(ctx, l); ok && other.Holder == a.Node.Name {
					log.V(1).Info("subnet already claimed for this node by another allocator, joining it", "node", a.Node.Name, "cidr", next)
					cl, cidr = other.Lease, next
					break
				}
				log.V(1).Info("subnet already claimed by another allocator, trying the next", "node", a.Node.Name, "cidr", next)
				next = netip.Prefix{}
				continue
			}
			if err != nil {
				return allocated{}, err
			}
			cl, cidr = l, next
			break
		}
	}

	ns := &v1alpha1.NodeSubnet{
		ObjectMeta: metav1.ObjectMeta{
			Name:   a.Node.Name,
			Labels: managedLabels(),
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
		// Another replica created this node's NodeSubnet first. Never overwrite it; our claim
		// is released by the next pass (planClaims: "got another CIDR instead").
		log.Info("NodeSubnet created concurrently by another allocator", "node", a.Node.Name)
		return allocated{}, nil
	}
	return allocated{Node: a.Node, CIDR: cidr, ClaimName: cl.Name, ClaimUID: cl.UID, Subnet: ns}, nil
}

// confirm is the fence (claims.go) for all NodeSubnets a pass created, in one uncached read of
// the claims taken after the last of them was created: each claim must still be the one its
// NodeSubnet was created under. A NodeSubnet whose claim is gone or was replaced meanwhile
// (only possible after a stall longer than the claim grace period, an uninstall, or a
// person deleting the claim) may share its CIDR with another node's now, so it is taken back
// and its node allocated afresh by the next pass. Returns the confirmed allocations, with the
// claim as read. If the read itself fails nothing is confirmed or taken back: the pass fails
// and the next one decides from the API server (a NodeSubnet left without its claim loses a
// shared CIDR to the claim holder, pickKeeper, or else gets its claim back, BackfillClaims).
func (r *IPAMReconciler) confirm(ctx context.Context, log logr.Logger, created []allocated) (kept []allocated, errs []error) {
	if len(created) == 0 {
		return nil, nil
	}
	claims, err := r.listClaims(ctx)
	if err != nil {
		return nil, []error{fmt.Errorf("fencing %d new NodeSubnets: %w", len(created), err)}
	}
	byName := make(map[string]claim, len(claims))
	for _, c := range claims {
		byName[c.Name] = c
	}
	for _, g := range created {
		if c, ok := byName[g.ClaimName]; ok && c.UID == g.ClaimUID {
			g.Claim = c.Lease
			kept = append(kept, g)
			log.Info("allocated node subnet", "node", g.Node.Name, "cidr", g.CIDR, "gateway", g.Subnet.Spec.Gateway, "nodeIP", g.Subnet.Spec.NodeIP)
			continue
		}
		log.Info("subnet claim lost while creating the NodeSubnet; taking it back", "node", g.Node.Name, "cidr", g.CIDR)
		uid := g.Subnet.UID
		if derr := r.Client.Delete(ctx, g.Subnet, client.Preconditions{UID: &uid}); client.IgnoreNotFound(derr) != nil && !apierrors.IsConflict(derr) {
			errs = append(errs, derr)
			continue
		}
		err := fmt.Errorf("claim for %s was released during allocation", g.CIDR)
		observeAllocation(g.Node, netip.Prefix{}, err, r.Options.Now())
		errs = append(errs, fmt.Errorf("allocating a subnet for node %s: %w", g.Node.Name, err))
	}
	return kept, errs
}

// claimFor reads the claim Lease named like l, uncached.
func (r *IPAMReconciler) claimFor(ctx context.Context, l *coordinationv1.Lease) (claim, bool) {
	cur := &coordinationv1.Lease{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(l), cur); err != nil {
		return claim{}, false
	}
	return parseClaim(cur)
}

// adopt sets the NodeSubnet as the owner of its claim (optimistic concurrency: a conflict
// means someone else changed the claim, and the next pass decides again).
func (r *IPAMReconciler) adopt(ctx context.Context, c claim, s *v1alpha1.NodeSubnet) error {
	l := c.Lease.DeepCopy()
	l.OwnerReferences = append(l.OwnerReferences, subnetOwnerRef(s))
	err := r.Client.Update(ctx, l)
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
