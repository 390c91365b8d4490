package controllers

import (
	"context"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// The agents' heartbeats (v1alpha1.HeartbeatLeaseName, renewed by agent.Heartbeat). A node
// whose Lease has not been renewed for its lease duration stops counting as ready, and the
// NetworkCluster goes Degraded (AgentNotReporting) naming it: its NodeSubnet still says what
// the agent last reported, which nobody vouches for any more. Only the NetworkCluster says
// so: the NodeSubnet status is the agent's (a condition the operator set there would be
// dropped by the agent's next status patch, which carries the whole condition list).
//
// A node without a heartbeat Lease (an agent from before heartbeats, during an upgrade, or one
// that has not started) is judged by its NodeSubnet alone. The Lease is owned by the
// NodeSubnet, so it goes with it.

// ReasonAgentNotReporting: agents whose heartbeat Lease expired.
const ReasonAgentNotReporting = "AgentNotReporting"

// heartbeatExpiries maps each node with a well-formed heartbeat Lease to the time it
// expires (renewTime + leaseDurationSeconds). The node is the one the Lease name says: the
// admission policy holds every agent to its own node's name.
func heartbeatExpiries(leases []coordinationv1.Lease) map[string]time.Time {
	m := map[string]time.Time{}
	for i := range leases {
		l := &leases[i]
		node, ok := strings.CutPrefix(l.Name, v1alpha1.HeartbeatLeasePrefix)
		if !ok || node == "" || l.Labels[v1alpha1.LabelHeartbeat] != "true" {
			continue
		}
		m[node] = leaseExpiry(l)
	}
	return m
}

// leaseExpiry is when l expires; the zero time when it was never renewed (expired).
func leaseExpiry(l *coordinationv1.Lease) time.Time {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
}

// nextExpiry is how long until the first heartbeat that is live at now expires (0: none is):
// the pass that must notice it is requeued then, instead of polling.
func nextExpiry(expiries map[string]time.Time, now time.Time) time.Duration {
	var next time.Duration
	for _, exp := range expiries {
		if d := exp.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// heartbeatChanged passes heartbeat Lease events that can change the status: creation,
// deletion, and a renewal of a Lease that had expired (the agent is back). Ordinary renewals,
// one per node every 10 s, do not wake the NetworkCluster pass; expiry is its RequeueAfter.
func heartbeatChanged(now func() time.Time) predicate.Predicate {
	isHeartbeat := func(o client.Object) bool { return o.GetLabels()[v1alpha1.LabelHeartbeat] == "true" }
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return isHeartbeat(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return isHeartbeat(e.Object) },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, ok := e.ObjectOld.(*coordinationv1.Lease)
			return ok && isHeartbeat(e.ObjectNew) && !now().Before(leaseExpiry(old))
		},
	}
}

// listHeartbeats reads the heartbeat Leases of namespace (from the cache).
func listHeartbeats(ctx context.Context, c client.Reader, namespace string) (map[string]time.Time, error) {
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(namespace), client.MatchingLabels{v1alpha1.LabelHeartbeat: "true"}); err != nil {
		return nil, err
	}
	return heartbeatExpiries(leases.Items), nil
}

// deleteHeartbeats removes the agents' heartbeat Leases (uninstall, after the agents). Their
// owner, the NodeSubnet, would let the garbage collector do it, but uninstall must not
// depend on it.
func deleteHeartbeats(ctx context.Context, c client.Client, r client.Reader, namespace string) error {
	var leases coordinationv1.LeaseList
	if err := r.List(ctx, &leases, client.InNamespace(namespace), client.MatchingLabels{v1alpha1.LabelHeartbeat: "true"}); err != nil {
		return err
	}
	var errs []error
	for i := range leases.Items {
		if err := c.Delete(ctx, &leases.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return kerrors.NewAggregate(errs)
}
