package controllers

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmanager "sigs.k8s.io/controller-runtime/pkg/manager"
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
// out. The collision-proof part is the block protocol described in blocks.go.
type IPAMReconciler struct {
	Client    client.Client
	APIReader client.Reader // uncached: allocation decisions are never made on a stale cache
	Recorder  recorder.EventRecorder
	Options   Options

	serviceCIDRs bool // the API server serves ServiceCIDR (servicecidr.go)

	passMu   sync.Mutex // held by a pass; releaseOnStop waits for it
	stopping bool       // set by releaseOnStop: no pass acquires blocks any more
}

// SetupWithManager watches the NetworkCluster, Nodes, NodeSubnets and, where served,
// ServiceCIDRs, all mapped to one key.
func (r *IPAMReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Options = r.Options.withDefaults()
	b := ctrl.NewControllerManagedBy(mgr)
	if r.serviceCIDRs = serviceCIDRsServed(mgr.GetRESTMapper()); r.serviceCIDRs {
		b = b.Watches(&networkingv1.ServiceCIDR{}, toCluster)
	}
	if err := b.
		Named("nodesubnet-ipam").
		For(&v1alpha1.NetworkCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Node{}, toCluster, builder.WithPredicates(nodeChanged)).
		// Status writes of agents do not change allocation; one that drops the operator's
		// NodeIPConflict (an agent writing from a cache that had not seen it) is put right.
		Watches(&v1alpha1.NodeSubnet{}, toCluster, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, ipConflictChanged))).
		// A block another allocator releases (or lets go) may be what waiting nodes need.
		Watches(&coordinationv1.Lease{}, toCluster, builder.WithPredicates(r.othersBlock())).
		Complete(r); err != nil {
		return err
	}
	return mgr.Add(crmanager.RunnableFunc(r.releaseOnStop))
}

// othersBlock filters the Lease watch down to subnet blocks held by anyone but this allocator
// (its own acquisitions and renewals change nothing a pass would decide; leader election
// Leases are renewed every few seconds).
func (r *IPAMReconciler) othersBlock() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		l, ok := o.(*coordinationv1.Lease)
		if !ok || l.Labels[LabelSubnetClaim] != "true" {
			return false
		}
		return l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != r.Options.Identity
	})
}

// releaseOnStop releases this allocator's blocks when the manager stops (after the pass in
// flight), so that the operator replacing it, or its next process, allocates from them at
// once instead of after their Leases expire. Best effort: a block it cannot release expires.
func (r *IPAMReconciler) releaseOnStop(ctx context.Context) error {
	<-ctx.Done()
	r.passMu.Lock()
	defer r.passMu.Unlock()
	r.stopping = true
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leases, err := r.listBlockLeases(rctx)
	if err != nil {
		ctrl.Log.Error(err, "releasing subnet blocks on stop")
		return nil
	}
	for i := range leases {
		l := &leases[i]
		if !strings.HasPrefix(l.Name, blockNamePrefix) || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != r.Options.Identity {
			continue
		}
		l.Spec.HolderIdentity = nil // the epoch stays: the next holder raises it
		if err := r.Client.Update(rctx, l); err != nil {
			ctrl.Log.Error(err, "releasing a subnet block on stop", "lease", l.Name)
		}
	}
	return nil
}

// Reconcile runs one IPAM pass.
func (r *IPAMReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	if r.stopping {
		return ctrl.Result{}, nil
	}
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

	// The blocks are listed before the NodeSubnets: a block the pass acquires with the
	// resourceVersion of this listing was not written since, so every NodeSubnet created in
	// it is in the listing below (blocks.go).
	leases, err := r.listBlockLeases(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	blocks, legacy := parseBlocks(pool, leases)
	var subnets v1alpha1.NodeSubnetList
	if err := r.APIReader.List(ctx, &subnets); err != nil {
		return ctrl.Result{}, err
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		return ctrl.Result{}, err
	}
	plan := planSubnets(planInput{Pool: pool, Selector: nodeSelector(nc), Nodes: nodes.Items, Subnets: subnets.Items})

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
	for _, l := range legacy {
		// Per-subnet claims of an earlier version, or Leases of a former cluster CIDR: the
		// NodeSubnets hold every CIDR in use.
		log.Info("removing a subnet Lease of an earlier version", "lease", l.Name)
		uid := l.UID
		if err := r.Client.Delete(ctx, l, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			errs = append(errs, err)
		}
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
	pick := r.newPicker(log, pool, blocks, plan.Used, maxEpochs(pool, subnets.Items))
	exhausted, waiting, allocErrs := r.allocateRounds(ctx, log, nc, pick, nodeSelector(nc), handled, plan.Allocate)
	errs = append(errs, allocErrs...)
	var recheck time.Duration
	if waiting > 0 {
		// Every free subnet is in a block another allocator holds (a replaced leader's, until
		// its Lease runs out): look again then, or when a block Lease changes (the watch).
		recheck = pick.recheck()
		log.Info("nodes wait for a subnet block another allocator holds", "nodes", waiting, "recheckAfter", recheck)
	}
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
	subnetBlocks.Set(float64(pick.heldCount()))
	subnetsAllocated.Set(float64(pool.Size() - pool.Free(plan.Used)))
	subnetsFree.Set(float64(pool.Free(plan.Used)))
	nodesWithoutSubnet.Set(float64(len(exhausted) + len(plan.NoAddress)))

	if err := kerrors.NewAggregate(errs); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: recheck}, nil
}

func (r *IPAMReconciler) listBlockLeases(ctx context.Context) ([]coordinationv1.Lease, error) {
	return listSubnetLeases(ctx, r.APIReader, r.Options.Namespace)
}

// listSubnetLeases lists the Leases labelled as subnet blocks (or claims of earlier versions).
func listSubnetLeases(ctx context.Context, c client.Reader, namespace string) ([]coordinationv1.Lease, error) {
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(namespace), client.MatchingLabels{LabelSubnetClaim: "true"}); err != nil {
		return nil, err
	}
	return leases.Items, nil
}

// removeLeftovers: there is no NetworkCluster (confirmed uncached, so a cache that has not
// seen a new one yet cannot wipe the network), so no NodeSubnet or subnet block should exist. They
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

// deleteAllClaims removes every subnet block Lease (one by one: the operator's role has no
// deletecollection, and each delete is checked against the Lease's UID).
func deleteAllClaims(ctx context.Context, c client.Client, r client.Reader, namespace string) error {
	leases, err := listSubnetLeases(ctx, r, namespace)
	if err != nil {
		return err
	}
	var errs []error
	for i := range leases {
		uid := leases[i].UID
		err := c.Delete(ctx, &leases[i], client.Preconditions{UID: &uid})
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, err)
		}
	}
	return kerrors.NewAggregate(errs)
}
