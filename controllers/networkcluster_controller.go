package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// NetworkClusterReconciler turns the NetworkCluster into the running agents (the admission
// policy that keeps each to its own NodeSubnet, DaemonSet, ServiceAccount, ClusterRole and
// binding, the Role and binding of their heartbeat Leases, all server-side applied),
// aggregates the agents' NodeSubnet reports and heartbeats into the NetworkCluster status, and runs uninstall behind the cleanup finalizer (uninstall.go). Shape after cluster-api: fetch, act, and compute + patch the
// status in a deferred block, so every exit path (errors included) reports.
type NetworkClusterReconciler struct {
	Client    client.Client
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Options   Options

	serviceCIDRs bool // the API server serves ServiceCIDR (servicecidr.go)

	// agentApplied is the NetworkCluster (UID/generation) the agent objects were last applied
	// for, nil after any event of one of them: applying what is there is a no-op, but eight
	// server-side applies per pass are most of a pass's cost on the API server.
	agentApplied atomic.Pointer[string]
}

// SetupWithManager watches the NetworkCluster, what it owns, Nodes (totals), NodeSubnets
// (agent reports), the agents' heartbeat Leases and, where served, ServiceCIDRs.
func (r *NetworkClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Options = r.Options.withDefaults()
	paced := (&pacer{interval: statusInterval, now: time.Now}).handler()
	// Any event of an agent object (drift, deletion, the cache's initial listing) means the
	// next pass applies them again.
	changed := builder.WithPredicates(predicate.NewPredicateFuncs(func(client.Object) bool {
		r.agentApplied.Store(nil)
		return true
	}))
	b := ctrl.NewControllerManagedBy(mgr)
	if r.serviceCIDRs = serviceCIDRsServed(mgr.GetRESTMapper()); r.serviceCIDRs {
		b = b.Watches(&networkingv1.ServiceCIDR{}, toCluster)
	}
	return b.
		Named("networkcluster").
		For(&v1alpha1.NetworkCluster{}, builder.WithPredicates(notStatusOnly)).
		Owns(&appsv1.DaemonSet{}, changed).
		Owns(&corev1.ServiceAccount{}, changed).
		Owns(&rbacv1.ClusterRole{}, changed).
		Owns(&rbacv1.ClusterRoleBinding{}, changed).
		Owns(&rbacv1.Role{}, changed).
		Owns(&rbacv1.RoleBinding{}, changed).
		Owns(&admissionregistrationv1.ValidatingAdmissionPolicy{}, changed).
		Owns(&admissionregistrationv1.ValidatingAdmissionPolicyBinding{}, changed).
		// The high-volume sources, paced: see statusInterval. The NetworkCluster's own status
		// updates among them: the pass after a status patch sees that patch in the cache and
		// puts right a patch that was computed against a stale copy (a merge patch leaves out
		// the fields the stale copy already had).
		Watches(&v1alpha1.NetworkCluster{}, paced, builder.WithPredicates(statusOnly)).
		Watches(&corev1.Node{}, paced, builder.WithPredicates(nodeChanged)).
		Watches(&v1alpha1.NodeSubnet{}, paced).
		Watches(&coordinationv1.Lease{}, paced, builder.WithPredicates(heartbeatChanged(r.Options.Now))).
		Complete(r)
}

// notStatusOnly passes NetworkCluster events at once except updates that change nothing but
// the status (and the resourceVersion and managed fields that come with it): mostly this
// reconciler's own status patches, each of which would otherwise start the next pass at once
// and undo the pacing during a burst (statusInterval); statusOnly sends those through the
// pacer. Spec, deletion, finalizers, labels, annotations and owners start a pass at once.
var notStatusOnly = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return !onlyStatusChanged(e) }}

// statusOnly is the complement of notStatusOnly for updates (and passes nothing else).
var statusOnly = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc:  onlyStatusChanged,
}

func onlyStatusChanged(e event.UpdateEvent) bool {
	o, n := e.ObjectOld, e.ObjectNew
	if o == nil || n == nil {
		return false
	}
	return o.GetGeneration() == n.GetGeneration() &&
		o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) &&
		slices.Equal(o.GetFinalizers(), n.GetFinalizers()) &&
		maps.Equal(o.GetLabels(), n.GetLabels()) &&
		maps.Equal(o.GetAnnotations(), n.GetAnnotations()) &&
		reflect.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences())
}

// Reconcile brings the agents and the status in line with the NetworkCluster.
func (r *NetworkClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	nc := &v1alpha1.NetworkCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, nc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	in := statusInput{Generation: nc.Generation, Selector: nodeSelector(nc), Protocol: nc.Spec.LoopPrevention.ProtocolOf()}
	defer func() {
		if nc.DeletionTimestamp != nil && !controllerutil.ContainsFinalizer(nc, v1alpha1.FinalizerCleanup) {
			return // released: the object is gone
		}
		if err := r.observe(ctx, nc, &in); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, err})
			return
		}
		now := r.Options.Now()
		observeNodes(in, now)
		if err := patchStatus(ctx, r.Client, nc, computeStatus(in, nc.Status, metaNow(now))); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, err})
		}
		// The next heartbeat to expire is noticed at its expiry, not by polling.
		if next := nextExpiry(in.Heartbeats, now); next > 0 && (res.RequeueAfter == 0 || next < res.RequeueAfter) {
			res.RequeueAfter = next
		}
	}()

	if nc.DeletionTimestamp != nil {
		in.Deleting = true
		return r.reconcileDelete(ctx, nc, &in)
	}
	if !controllerutil.ContainsFinalizer(nc, v1alpha1.FinalizerCleanup) {
		patch := client.MergeFromWithOptions(nc.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(nc, v1alpha1.FinalizerCleanup)
		if err := r.Client.Patch(ctx, nc, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	pool, err := NewPool(nc.Spec.ClusterCIDROf(), nc.Spec.NodeSubnetPrefixLengthOf())
	if err != nil {
		in.PoolErr = err
	} else {
		in.Pool = &pool
	}
	key := fmt.Sprintf("%s/%d", nc.UID, nc.Generation)
	if prev := r.agentApplied.Swap(&key); prev == nil || *prev != key {
		if err := r.applyAgent(ctx, nc); err != nil {
			r.agentApplied.Store(nil)
			in.ApplyErr = err
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// applyAgent server-side applies the agent objects. Applying what is already there is a no-op
// on the API server (no write, same resourceVersion), so every pass may apply, and a restart
// writes nothing. The admission policy comes first and an error stops the pass: agents never
// get their RBAC (nor run) without the policy that limits it, on any install path. (The API
// server enforces a new policy a moment later, once its informer has it; an agent pod takes
// longer than that to be scheduled and start.)
func (r *NetworkClusterReconciler) applyAgent(ctx context.Context, nc *v1alpha1.NetworkCluster) error {
	ns := r.Options.Namespace
	policy, binding, err := agentPolicy(nc)
	if err != nil {
		return err
	}
	if err := r.applyExclusively(ctx, nc, policy); err != nil {
		return err
	}
	if err := r.applyExclusively(ctx, nc, binding); err != nil {
		return err
	}
	objs := []runtime.ApplyConfiguration{
		agentServiceAccount(nc, ns),
		agentClusterRole(nc),
		agentClusterRoleBinding(nc, ns),
		agentRole(nc, ns),
		agentRoleBinding(nc, ns),
		agentDaemonSet(nc, ns, r.Options.AgentMetricsPort),
	}
	for _, o := range objs {
		if err := r.Client.Apply(ctx, o, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return err
		}
	}
	return nil
}

// observe lists what the status is computed from (from the cache: the status is eventually
// consistent by nature, and every change of these objects triggers a new pass).
func (r *NetworkClusterReconciler) observe(ctx context.Context, nc *v1alpha1.NetworkCluster, in *statusInput) error {
	if in.Pool == nil && in.PoolErr == nil {
		if p, err := NewPool(nc.Spec.ClusterCIDROf(), nc.Spec.NodeSubnetPrefixLengthOf()); err == nil {
			in.Pool = &p
		} else {
			in.PoolErr = err
		}
	}
	// Read only (the status, the gauges and conflict checks never change what they list), so
	// the cache's objects are not deep-copied: thousands of Nodes and NodeSubnets per pass.
	var nodes corev1.NodeList
	var subnets v1alpha1.NodeSubnetList
	if err := errors.Join(r.Client.List(ctx, &nodes, client.UnsafeDisableDeepCopy), r.Client.List(ctx, &subnets, client.UnsafeDisableDeepCopy)); err != nil {
		return err
	}
	in.Nodes, in.Subnets = nodes.Items, subnets.Items
	if r.serviceCIDRs {
		svc, err := listServiceCIDRs(ctx, r.Client)
		if err != nil {
			return err
		}
		in.ServiceCIDRs = svc
	}
	hb, err := listHeartbeats(ctx, r.Client, r.Options.Namespace)
	if err != nil {
		return err
	}
	in.Heartbeats = hb
	return nil
}

// deleteAgent removes the agent objects (their owner reference would let the garbage
// collector do it too, but uninstall must not depend on it, and it must happen before the
// finalizer goes). The admission policy goes last, after the agents' RBAC: until then an
// agent credential that still works is still held to its own node.
func (r *NetworkClusterReconciler) deleteAgent(ctx context.Context) error {
	ns := r.Options.Namespace
	bg := client.PropagationPolicy("Background")
	var errs []error
	for _, o := range []client.Object{
		&appsv1.DaemonSet{ObjectMeta: objMeta(AgentName, ns)},
		&rbacv1.ClusterRoleBinding{ObjectMeta: objMeta(AgentName, "")},
		&rbacv1.ClusterRole{ObjectMeta: objMeta(AgentName, "")},
		&rbacv1.RoleBinding{ObjectMeta: objMeta(AgentName, ns)},
		&rbacv1.Role{ObjectMeta: objMeta(AgentName, ns)},
		&corev1.ServiceAccount{ObjectMeta: objMeta(AgentName, ns)},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: objMeta(AgentPolicyName, "")},
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: objMeta(AgentPolicyName, "")},
	} {
		if err := r.Client.Delete(ctx, o, bg); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return kerrors.NewAggregate(errs)
}
