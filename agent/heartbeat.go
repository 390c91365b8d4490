package agent

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Heartbeat renews this node's heartbeat Lease (v1alpha1.HeartbeatLeaseName) in the
// operator's namespace, so that the operator can tell an agent that stopped (crashed, hung,
// node powered off) from one whose last report still holds. It is the kubelet's node-lease
// controller (k8s.io/component-helpers/apimachinery/lease) run as a manager Runnable of its
// own, independent of the reconcile loop: a long pass, or one stuck on OVS, never delays a
// renewal. Each renewal's API calls are bounded by HeartbeatRenewInterval through the
// client's timeout, as the kubelet bounds its own. The Lease is owned by this node's
// NodeSubnet, so it goes when the NodeSubnet does (uninstall, node removed); it is not
// deleted when the agent exits: a restart within the lease duration is no outage.
type Heartbeat struct {
	ctl lease.Controller
}

// NewHeartbeat returns the heartbeat of node in namespace. reader finds the NodeSubnet to own
// the Lease (the manager's cached client). clk is the clock (clock.RealClock{} but in tests).
func NewHeartbeat(cfg *rest.Config, reader client.Reader, namespace, node string, clk clock.Clock) (*Heartbeat, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = v1alpha1.HeartbeatRenewInterval
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("heartbeat client: %w", err)
	}
	owned := func(l *coordinationv1.Lease) error { return ownLease(reader, node, l) }
	ctl := lease.NewController(clk, cs, node, int32(v1alpha1.HeartbeatLeaseDuration.Seconds()), nil,
		v1alpha1.HeartbeatRenewInterval, v1alpha1.HeartbeatLeaseName(node), namespace, owned)
	return &Heartbeat{ctl: ctl}, nil
}

// Start implements manager.Runnable: it renews until ctx ends.
func (h *Heartbeat) Start(ctx context.Context) error {
	h.ctl.Run(ctx)
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every agent beats.
func (h *Heartbeat) NeedLeaderElection() bool { return false }

var _ manager.LeaderElectionRunnable = (*Heartbeat)(nil)

// ownLease labels the Lease and makes this node's NodeSubnet its owner. Without the
// NodeSubnet (not allocated yet) the Lease is not created yet; renewals of one that exists
// go on regardless (the lease controller ignores this error on update).
func ownLease(reader client.Reader, node string, l *coordinationv1.Lease) error {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[v1alpha1.LabelHeartbeat] = "true"
	l.Labels["app.kubernetes.io/part-of"] = "ovsmesh"
	l.Labels["app.kubernetes.io/component"] = "agent-heartbeat"
	ctx, cancel := context.WithTimeout(context.Background(), APICallTimeout)
	defer cancel()
	var own v1alpha1.NodeSubnet
	if err := reader.Get(ctx, types.NamespacedName{Name: node}, &own); err != nil {
		return fmt.Errorf("the heartbeat Lease is owned by NodeSubnet %s: %w", node, err)
	}
	l.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "NodeSubnet", Name: own.Name, UID: own.UID,
	}}
	return nil
}
