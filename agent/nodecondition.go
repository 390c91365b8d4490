package agent

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// The Node condition pod networks set (Calico, Cilium, Flannel: NetworkUnavailable, reason
// naming the network): False once this node's data path is Ready, True with the reason when
// it is not or has been removed. kube-controller-manager taints a node whose condition is
// True (node.kubernetes.io/network-unavailable:NoSchedule), so no pod is placed where it
// could not talk; the agent's own DaemonSet pods tolerate it. The agent writes only its own
// Node and only this condition, which the admission policy enforces
// (controllers/policy/nodesubnet_agent_restriction.yaml).

// Reasons of the NetworkUnavailable condition.
const (
	NodeReasonUp      = "OvsmeshIsUp"
	NodeReasonDown    = "OvsmeshNotReady"
	NodeReasonRemoved = "OvsmeshRemoved"
)

// nodeNetworkCondition is the NetworkUnavailable condition for a NodeSubnet status: pure.
// now stamps the heartbeat; the transition time is the caller's to keep.
func nodeNetworkCondition(st v1alpha1.NodeSubnetStatus, now metav1.Time) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, LastHeartbeatTime: now, LastTransitionTime: now}
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	switch {
	case meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCleanedUp) != nil:
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, NodeReasonRemoved, "ovsmesh removed its data path from this node"
	case ready != nil && ready.Status == metav1.ConditionTrue:
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, NodeReasonUp, "ovsmesh: "+ready.Message
	case ready != nil:
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, NodeReasonDown, fmt.Sprintf("ovsmesh: %s: %s", ready.Reason, ready.Message)
	default:
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, NodeReasonDown, "ovsmesh: the agent has not applied this node yet"
	}
	return c
}

// markNode writes the NetworkUnavailable condition for st into this node's Node when it
// differs (status, reason or message) from the one there: a strategic merge patch of that
// one condition (Node conditions merge by type), so the kubelet's are untouched.
func (r *Reconciler) markNode(ctx context.Context, st v1alpha1.NodeSubnetStatus) error {
	var node corev1.Node
	if err := r.Client.Get(ctx, types.NamespacedName{Name: r.NodeName}, &node); err != nil {
		return client.IgnoreNotFound(err)
	}
	want := nodeNetworkCondition(st, metav1.Now())
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeNetworkUnavailable {
			continue
		}
		if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
			return nil
		}
		if c.Status == want.Status {
			want.LastTransitionTime = c.LastTransitionTime
		}
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{want}}})
	if err != nil {
		return err
	}
	ctx, cancel := apiCtx(ctx)
	defer cancel()
	if err := r.Client.Status().Patch(ctx, &node, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("Node %s condition %s: %w", r.NodeName, corev1.NodeNetworkUnavailable, err)
	}
	return nil
}

// markNodeRemoved sets NetworkUnavailable=True OvsmeshRemoved: the node left the mesh.
func (r *Reconciler) markNodeRemoved(ctx context.Context) {
	st := v1alpha1.NodeSubnetStatus{Conditions: []metav1.Condition{{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue}}}
	if err := r.markNode(ctx, st); err != nil {
		r.Log.Error(err, "setting the Node condition")
	}
}
