package agent

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
