package controllers

// Why subnet claims exist
//
// The API server is the only place IPAM state lives, and it offers exactly one atomic
// "first writer wins" primitive across objects: the uniqueness of an object's name. A
// NodeSubnet is named after its node (the API enforces it), so two allocators racing for two
// different nodes could both create a NodeSubnet with the same CIDR, and no listing before
// creating can prevent it (two operator replicas, or a stale cache, both see the CIDR free).
//
// So every allocated CIDR is first claimed by creating a Lease (coordination.k8s.io) in the
// operator's namespace whose NAME is derived from the CIDR: ovsmesh-subnet-10-244-3-0-24. The
// API server lets only one create of that name succeed; the loser gets AlreadyExists, counts
// the CIDR as used and tries the next one. Only the winner goes on to create the NodeSubnet.
// Hence one CIDR can never be handed to two nodes, whatever the number of replicas, caches or
// restarts, and the allocation needs no leader election, no lock with an expiry and no
// in-memory state. (A single reconcile key additionally serialises allocation inside one
// process, so one replica never collides with itself.)
//
// The claim's lifecycle, all decided from what the API server says (planClaims):
//
//	created (holder = node, no owner)  →  NodeSubnet created with that CIDR
//	  →  fence: the claim is read back after the NodeSubnet exists
//	  →  claim gets an ownerReference to the NodeSubnet ("adopted", by a later pass)
//	  →  NodeSubnet deleted  →  claim deleted by the GC (owner gone) or by the reconciler.
//
// A claim without an owner is "pending": an allocation in flight, one whose allocator died
// between the two creates, or one whose NodeSubnet exists and that waits for its adoption. A
// restarted operator resumes it (the node gets the claimed CIDR; nothing leaks) or adopts it
// (its holder's NodeSubnet has its CIDR). A pending claim whose node already got a NodeSubnet
// with another CIDR lost a race between replicas and is released. A pending claim whose node
// is gone is released after a grace period.
//
// The fence. Because that release is time-based (and because an uninstall, or a person, may
// delete claims too), an allocator that stalled between its claim and its NodeSubnet create
// can create the NodeSubnet after its claim was released and the CIDR claimed again for
// another node. So every allocation re-reads its claim after its NodeSubnet exists and takes
// the NodeSubnet back if the claim is gone or is another object (same name, new UID); only
// then is the allocation reported. The read need not follow each create at once: the question
// is "was my claim released before my NodeSubnet existed?", and any read taken after the
// create answers it as well as one taken right after (a later one also catches later
// releases). So a pass does one uncached LIST of the claims after all its creates (confirm)
// instead of one GET per allocation: the same guarantee, no clock involved, one request per
// pass. What no read after the create can rule out, now as before, is a releaser that listed
// the NodeSubnets before ours existed and deletes the claim after our read; its reasons all
// mean our node left the mesh (or got another NodeSubnet, so ours was never created), and the
// next pass settles it: our NodeSubnet goes with its node, and a CIDR two NodeSubnets share
// stays with its claim holder (pickKeeper). Should the allocator die before its fence, the
// next pass is the fence the same way; a NodeSubnet alone with its CIDR gets its claim back
// (BackfillClaims).
//
// Adoption is what lets the garbage collector release a claim when its NodeSubnet is deleted
// while no operator runs; it decides nothing about allocation (a pending claim whose holder
// has a NodeSubnet with its CIDR already keeps that CIDR used and is never resumed for
// another node). So it is left to a later pass (the planner's AdoptClaims), and a pass busy
// allocating defers young ones further (splitAdoptions): the happy path of an allocation is
// two requests, the claim and the NodeSubnet, plus its adoption outside the allocation's path
// and a pass's one fence read and one Event (perNodeEventLimit).

import (
	"net/netip"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

const (
	// LabelSubnetClaim marks the claim Leases (value "true").
	LabelSubnetClaim = "network.ovsmesh.io/subnet-claim"
	// AnnotationClaimCIDR holds the claimed CIDR in its usual notation.
	AnnotationClaimCIDR = "network.ovsmesh.io/cidr"
	claimNamePrefix     = "ovsmesh-subnet-"
)

// claimName is the claim's object name for a subnet: the uniqueness key.
func claimName(s netip.Prefix) string {
	r := strings.NewReplacer(".", "-", "/", "-")
	return claimNamePrefix + r.Replace(s.String())
}

// claim is a parsed claim Lease.
type claim struct {
	Name    string
	UID     types.UID
	Created time.Time
	CIDR    netip.Prefix
	Holder  string    // node name
	Owner   types.UID // UID of the owning NodeSubnet; empty while pending
	Lease   *coordinationv1.Lease
}

// parseClaim reads a claim Lease; ok is false for a Lease that is not a well-formed claim.
func parseClaim(l *coordinationv1.Lease) (claim, bool) {
	p, err := netip.ParsePrefix(l.Annotations[AnnotationClaimCIDR])
	if err != nil || claimName(p) != l.Name || l.Spec.HolderIdentity == nil {
		return claim{}, false
	}
	c := claim{Name: l.Name, UID: l.UID, Created: l.CreationTimestamp.Time, CIDR: p, Holder: *l.Spec.HolderIdentity, Lease: l}
	for _, o := range l.OwnerReferences {
		if o.Kind == "NodeSubnet" && o.APIVersion == v1alpha1.GroupVersion.String() {
			c.Owner = o.UID
		}
	}
	return c, true
}

// newClaim builds the claim Lease of subnet s for node; owner is set when the NodeSubnet
// already exists (backfilling a claim for a NodeSubnet that has none).
func newClaim(namespace string, s netip.Prefix, node string, owner *v1alpha1.NodeSubnet) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        claimName(s),
			Namespace:   namespace,
			Labels:      managedLabels(),
			Annotations: map[string]string{AnnotationClaimCIDR: s.String()},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &node},
	}
	l.Labels[LabelSubnetClaim] = "true"
	if owner != nil {
		l.OwnerReferences = []metav1.OwnerReference{subnetOwnerRef(owner)}
	}
	return l
}

// subnetOwnerRef makes a NodeSubnet the owner of its claim, so that the garbage collector
// releases the claim once the NodeSubnet is gone (a namespaced dependent may have a
// cluster-scoped owner).
func subnetOwnerRef(s *v1alpha1.NodeSubnet) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "NodeSubnet", Name: s.Name, UID: s.UID}
}
