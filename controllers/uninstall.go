package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Event reasons of uninstall.
const (
	ReasonCleanupTimedOut = "CleanupTimedOut"
	ReasonCleanedUp       = "CleanedUp"
)

// uninstallStep is what reconcileDelete does next, decided from the NodeSubnets alone.
type uninstallStep struct {
	RequestTeardown []*v1alpha1.NodeSubnet // spec.teardown still false
	Pending         []string               // nodes whose agent has not reported CleanedUp=True
	Wait            time.Duration          // > 0: wait (at most this long) for the pending nodes
	TimedOut        bool                   // pending nodes remain but the timeout has passed
}

// planUninstall: every NodeSubnet is asked to tear down; uninstall waits until all report
// CleanedUp=True, but never longer than timeout after the deletion started (a dead node must
// not block uninstall forever). The deadline is derived from deletionTimestamp, so it holds
// across operator restarts.
func planUninstall(subnets []v1alpha1.NodeSubnet, deletedAt, now time.Time, timeout time.Duration) uninstallStep {
	var st uninstallStep
	for i := range subnets {
		s := &subnets[i]
		if !s.Spec.Teardown {
			st.RequestTeardown = append(st.RequestTeardown, s)
		}
		if !isTrue(s.Status.Conditions, v1alpha1.ConditionCleanedUp) {
			st.Pending = append(st.Pending, s.Name)
		}
	}
	if len(st.Pending) == 0 {
		return st
	}
	if left := deletedAt.Add(timeout).Sub(now); left > 0 {
		st.Wait = left
	} else {
		st.TimedOut = true
	}
	return st
}

// reconcileDelete runs uninstall: teardown requested on every NodeSubnet → wait for the
// agents' CleanedUp (bounded) → remove the agents, their RBAC, the NodeSubnets, the subnet blocks
// and the agents' heartbeat Leases → release the finalizer. The agents must keep running (and keep their RBAC) until
// they have cleaned up, hence this order.
func (r *NetworkClusterReconciler) reconcileDelete(ctx context.Context, nc *v1alpha1.NetworkCluster, in *statusInput) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	if !controllerutil.ContainsFinalizer(nc, v1alpha1.FinalizerCleanup) {
		return ctrl.Result{}, nil
	}
	var subnets v1alpha1.NodeSubnetList
	if err := r.APIReader.List(ctx, &subnets); err != nil {
		return ctrl.Result{}, err
	}
	step := planUninstall(subnets.Items, nc.DeletionTimestamp.Time, r.Options.Now(), r.Options.CleanupTimeout)
	in.CleanupPending = step.Pending
	var errs []error
	for _, s := range step.RequestTeardown {
		patch := client.MergeFrom(s.DeepCopy())
		s.Spec.Teardown = true
		log.Info("asking the agent to clean up its node", "nodeSubnet", s.Name)
		errs = append(errs, client.IgnoreNotFound(r.Client.Patch(ctx, s, patch)))
	}
	if err := kerrors.NewAggregate(errs); err != nil {
		return ctrl.Result{}, err
	}
	if step.Wait > 0 {
		// NodeSubnet status changes trigger a pass earlier; this is the deadline.
		log.Info("waiting for agents to clean up", "pending", step.Pending, "timeout in", step.Wait)
		return ctrl.Result{RequeueAfter: step.Wait}, nil
	}
	if step.TimedOut {
		log.Info("uninstall timed out waiting for agents; proceeding", "pending", step.Pending)
		r.Recorder.Eventf(nc, nil, corev1.EventTypeWarning, ReasonCleanupTimedOut, "Uninstall",
			"proceeding with uninstall after %s: no CleanedUp report from %s (their nodes may keep ovsmesh bridges and routes)",
			r.Options.CleanupTimeout, nameList(step.Pending))
	}

	if err := r.deleteAgent(ctx); err != nil {
		return ctrl.Result{}, err
	}
	for i := range subnets.Items {
		if err := r.Client.Delete(ctx, &subnets.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, deleteAllClaims(ctx, r.Client, r.APIReader, r.Options.Namespace))
	errs = append(errs, deleteHeartbeats(ctx, r.Client, r.APIReader, r.Options.Namespace))
	if err := kerrors.NewAggregate(errs); err != nil {
		return ctrl.Result{}, err
	}
	if !step.TimedOut {
		r.Recorder.Eventf(nc, nil, corev1.EventTypeNormal, ReasonCleanedUp, "Uninstall",
			"all %d nodes cleaned up; agents and NodeSubnets removed", len(subnets.Items))
	}
	patch := client.MergeFromWithOptions(nc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(nc, v1alpha1.FinalizerCleanup)
	log.Info("uninstall complete; releasing the NetworkCluster")
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, nc, patch))
}

func objMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}

func metaNow(t time.Time) metav1.Time { return metav1.NewTime(t) }
