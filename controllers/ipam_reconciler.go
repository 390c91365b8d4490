package controllers

import (
	"context"
	"net/netip"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Event reasons of the IPAM reconciler.
const (
	ReasonSubnetsExhausted   = "SubnetsExhausted"
	ReasonNodeAddressMissing = "NodeAddressMissing"
	ReasonSubnetAllocated    = "SubnetAllocated"
	ReasonSubnetReleased     = "SubnetReleased"
)

// IPAMReconciler is the IPAM: it gives every selected Node exactly one NodeSubnet, named
// after it, owned by it, with a CIDR no other node has, and removes NodeSubnets of nodes that
// left. Every pass looks at the whole cluster under one key (see toCluster), reads what is
// allocated straight from the API server, plans (subnet_plan.go, pure) and carries the plan
// out. The collision-proof part is the claim protocol described in claims.go.
type IPAMReconciler struct {
	Client    client.Client
	APIReader client.Reader // uncached: allocation decisions are never made on a stale cache
	Recorder  recorder.EventRecorder
	Options   Options

	serviceCIDRs bool // the API server serves ServiceCIDR (servicecidr.go)
}

// SetupWithManager watches the NetworkCluster, Nodes, NodeSubnets and, where served,
// ServiceCIDRs, all mapped to one key.
func (r *IPAMReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Options = r.Options.withDefaults()
	b := ctrl.NewControllerManagedBy(mgr)
	if r.serviceCIDRs = serviceCIDRsServed(mgr.GetRESTMapper()); r.serviceCIDRs {
		b = b.Watches(&networkingv1.ServiceCIDR{}, toCluster)
	}
	return b.
		Named("nodesubnet-ipam").
		For(&v1alpha1.NetworkCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Node{}, toCluster, builder.WithPredicates(nodeChanged)).
		// Status writes of agents do not change allocation; one that drops the operator's
		// NodeIPConflict (an agent writing from a cache that had not seen it) is put right.
		Watches(&v1alpha1.NodeSubnet{}, toCluster, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, ipConflictChanged))).
		// Claims released by the garbage collector (or by another replica) free subnets
		// that nodes left out by exhaustion are waiting for.
		Watches(&coordinationv1.Lease{}, toCluster, builder.WithPredicates(isClaim)).
		Complete(r)
}

// isClaim filters the Lease watch down to subnet claims (leader election Leases are renewed
// every few seconds).
var isClaim = predicate.NewPredicateFuncs(func(o client.Object) bool {
	return o.GetLabels()[LabelSubnetClaim] == "true"
})

// Reconcile runs one IPAM pass.
func (r *IPAMReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	nc := &v1alpha1.NetworkCluster{}
	if err := r.Client.Get(ctx, clusterKey, nc); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, r.removeLeftovers(ctx, log)
	}
	if nc.DeletionTimestamp != nil {
		// Uninstall (uninstall.go) owns the NodeSubnets now; no new ones.
		return ctrl.Result{}, nil
	}
	pool, err := NewPool(nc.Spec.ClusterCIDROf(), nc.Spec.NodeSubnetPrefixLengthOf())
	if err != nil {
		// The API validates both fields, so this is a spec the API server let through
		// without defaults (for example an older CRD); the status reconciler reports it.
		log.Error(err, "cannot allocate node subnets")
		return ctrl.Result{}, nil
	}

	var svcConflicts []string
	if r.serviceCIDRs {
		svc, err := listServiceCIDRs(ctx, r.Client)
		if err != nil {
			return ctrl.Result{}, err
		}
		svcConflicts = serviceCIDRConflicts(pool.cluster, svc)
	}

	// Claims are listed before NodeSubnets: a claim that is adopted after our list of claims
	// then has its NodeSubnet in our list of NodeSubnets, so no live claim looks orphaned.
	claims, err := r.listClaims(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	var subnets v1alpha1.NodeSubnetList
	if err := r.APIReader.List(ctx, &subnets); err != nil {
		return ctrl.Result{}, err
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		return ctrl.Result{}, err
	}
	plan := planSubnets(planInput{
		Pool: pool, Selector: nodeSelector(nc), Nodes: nodes.Items, Subnets: subnets.Items,
		Claims: claims, Now: r.Options.Now(), Grace: r.Options.ClaimGracePeriod,
	})

	var errs []error
	for _, d := range plan.DeleteSubnets {
		log.Info("removing NodeSubnet", "nodeSubnet", d.Subnet.Name, "cidr", d.Subnet.Spec.CIDR, "reason", d.Reason)
		if err := r.Client.Delete(ctx, d.Subnet, client.Preconditions{UID: &d.Subnet.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			errs = append(errs, err)
			continue
		}
		r.Recorder.Eventf(nc, nil, corev1.EventTypeNormal, ReasonSubnetReleased, "Release",
			"released %s of node %s: %s", d.Subnet.Spec.CIDR, d.Subnet.Spec.NodeName, d.Reason)
	}
	for _, d := range plan.DeleteClaims {
		log.Info("releasing subnet claim", "claim", d.Claim.Name, "holder", d.Claim.Holder, "reason", d.Reason)
		if err := r.deleteClaim(ctx, d.Claim); err != nil {
			errs = append(errs, err)
		} else if idx, ok := pool.Index(d.Claim.CIDR); ok && !plan.SubnetUsed[idx] {
			delete(plan.Used, idx) // free for the allocations below
		}
	}
	for _, s := range plan.BackfillClaims {
		errs = append(errs, r.backfill(ctx, log, s))
	}
	for _, u := range plan.UpdateNodeIP {
		patch := client.MergeFromWithOptions(u.Subnet.DeepCopy(), client.MergeFromWithOptimisticLock{})
		u.Subnet.Spec.NodeIP = u.IP.String()
		log.Info("node IP changed", "nodeSubnet", u.Subnet.Name, "nodeIP", u.Subnet.Spec.NodeIP)
		errs = append(errs, client.IgnoreNotFound(r.Client.Patch(ctx, u.Subnet, patch)))
	}

	if len(svcConflicts) > 0 && len(plan.Allocate) > 0 {
		// Reported as Degraded by the status; existing subnets stay (servicecidr.go).
		log.Info("cluster CIDR overlaps a Service CIDR: allocating no subnet", "serviceCIDRs", svcConflicts, "nodesWaiting", len(plan.Allocate))
		plan.Allocate = nil
	}
	handled := map[string]bool{} // nodes the pass need not allocate again: see arrivals
	for i := range subnets.Items {
		handled[subnets.Items[i].Name] = true
	}
	pick := &picker{pool: pool, used: plan.Used}
	exhausted, allocErrs := r.allocateRounds(ctx, log, nc, pick, nodeSelector(nc), handled, plan.Allocate)
	errs = append(errs, allocErrs...)
	// Adoptions after the allocations: they are bookkeeping (splitAdoptions), and a pass in a
	// burst of joins leaves the young ones to a later pass.
	adopts, adoptRecheck := splitAdoptions(plan.AdoptClaims, len(plan.Allocate) > 0, r.Options.Now())
	errs = append(errs, r.adoptAll(ctx, adopts))
	if len(exhausted) > 0 {
		log.Info("cluster CIDR exhausted", "nodesLeftOut", exhausted)
		r.Recorder.Eventf(nc, nil, corev1.EventTypeWarning, ReasonSubnetsExhausted, "Allocate",
			"no free /%d subnet left in %s (%d in use); nodes left out of the mesh: %s",
			pool.prefixLen, pool.cluster, pool.Size(), nameList(exhausted))
	}
	for _, name := range plan.NoAddress {
		for i := range nodes.Items {
			if n := &nodes.Items[i]; n.Name == name {
				r.Recorder.Eventf(n, nc, corev1.EventTypeWarning, ReasonNodeAddressMissing, "Allocate",
					"node %s has no IPv4 InternalIP address: it gets a pod subnet once it has one", name)
			}
		}
	}
	errs = append(errs, r.markDuplicates(ctx, nc, nodes.Items, subnets.Items))
	claimsInFlight.Set(float64(len(claims)))
	subnetsAllocated.Set(float64(pool.Size() - pool.Free(plan.Used)))
	subnetsFree.Set(float64(pool.Free(plan.Used)))
	nodesWithoutSubnet.Set(float64(len(exhausted) + len(plan.NoAddress)))

	if err := kerrors.NewAggregate(errs); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: minPositive(plan.RecheckAfter, adoptRecheck)}, nil
}

// backfill creates the claim of a NodeSubnet that has none.
func (r *IPAMReconciler) backfill(ctx context.Context, log logr.Logger, s *v1alpha1.NodeSubnet) error {
	p, err := netip.ParsePrefix(s.Spec.CIDR)
	if err != nil {
		return nil
	}
	log.Info("creating the missing claim of a NodeSubnet", "nodeSubnet", s.Name, "cidr", p)
	err = r.Client.Create(ctx, newClaim(r.Options.Namespace, p, s.Name, s))
	if apierrors.IsAlreadyExists(err) {
		return nil // the next pass sees it
	}
	return err
}

func (r *IPAMReconciler) deleteClaim(ctx context.Context, c claim) error {
	err := r.Client.Delete(ctx, c.Lease, client.Preconditions{UID: &c.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func (r *IPAMReconciler) listClaims(ctx context.Context) ([]claim, error) {
	return listClaims(ctx, r.APIReader, r.Options.Namespace)
}

func listClaims(ctx context.Context, c client.Reader, namespace string) ([]claim, error) {
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(namespace), client.MatchingLabels{LabelSubnetClaim: "true"}); err != nil {
		return nil, err
	}
	out := make([]claim, 0, len(leases.Items))
	for i := range leases.Items {
		if c, ok := parseClaim(&leases.Items[i]); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// removeLeftovers: there is no NetworkCluster (confirmed uncached, so a cache that has not
// seen a new one yet cannot wipe the network), so no NodeSubnet or claim should exist. They
// can only be left by an allocation that raced with the end of an uninstall.
func (r *IPAMReconciler) removeLeftovers(ctx context.Context, log logr.Logger) error {
	if err := r.APIReader.Get(ctx, clusterKey, &v1alpha1.NetworkCluster{}); !apierrors.IsNotFound(err) {
		return err
	}
	var subnets v1alpha1.NodeSubnetList
	if err := r.APIReader.List(ctx, &subnets); err != nil {
		return err
	}
	var errs []error
	for i := range subnets.Items {
		log.Info("removing a NodeSubnet left without a NetworkCluster", "nodeSubnet", subnets.Items[i].Name)
		errs = append(errs, client.IgnoreNotFound(r.Client.Delete(ctx, &subnets.Items[i])))
	}
	errs = append(errs, deleteAllClaims(ctx, r.Client, r.APIReader, r.Options.Namespace))
	return kerrors.NewAggregate(errs)
}

// deleteAllClaims releases every claim (one by one: the operator's role has no
// deletecollection, and each delete is checked against the claim's UID).
func deleteAllClaims(ctx context.Context, c client.Client, r client.Reader, namespace string) error {
	claims, err := listClaims(ctx, r, namespace)
	if err != nil {
		return err
	}
	var errs []error
	for _, cl := range claims {
		err := c.Delete(ctx, cl.Lease, client.Preconditions{UID: &cl.UID})
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, err)
		}
	}
	return kerrors.NewAggregate(errs)
}
