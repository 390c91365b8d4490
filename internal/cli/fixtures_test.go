package cli

import (
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// t0 is the fixed "now" of the unit tests.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// subnet is a NodeSubnet whose agent reported Ready with reason (status True for Applied)
// and the given unhealthy peers; reason "" is an agent that has not reported.
func subnet(name string, i int, reason string, peers ...v1alpha1.PeerStatus) v1alpha1.NodeSubnet {
	ns := v1alpha1.NodeSubnet{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.NodeSubnetSpec{
		NodeName: name, CIDR: fmt.Sprintf("10.244.%d.0/24", i), Gateway: fmt.Sprintf("10.244.%d.1", i),
		NodeIP: fmt.Sprintf("192.168.1.%d", 10+i)}}
	if reason == "" {
		return ns
	}
	status := metav1.ConditionFalse
	if reason == v1alpha1.ReasonApplied {
		status = metav1.ConditionTrue
	}
	ns.Status = v1alpha1.NodeSubnetStatus{MTU: 1458, TunnelCount: 2, UnhealthyPeers: peers,
		Tunnels:    v1alpha1.TunnelSummary{Desired: 2, Live: 2, Forwarding: 2 - int32(len(peers)), Down: int32(len(peers))},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: "2 gre tunnels on br-ovsmesh (STP), MTU 1458", LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute))}}}
	return ns
}

func down(peer string) v1alpha1.PeerStatus {
	return v1alpha1.PeerStatus{NodeName: peer, Port: "gre-" + peer, State: v1alpha1.PeerDown, Reason: v1alpha1.PeerReasonDown, Message: "BFD: no answer"}
}

// lease is node's heartbeat Lease renewed at renewed, valid 40 s.
func lease(node string, renewed time.Time) coordinationv1.Lease {
	return coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.HeartbeatLeaseName(node), Labels: map[string]string{v1alpha1.LabelHeartbeat: "true"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To(int32(40)), RenewTime: &metav1.MicroTime{Time: renewed}}}
}

func cluster() *v1alpha1.NetworkCluster {
	return &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName},
		Spec: v1alpha1.NetworkClusterSpec{ClusterCIDR: "10.244.0.0/16", Tunnel: v1alpha1.TunnelSpec{Type: v1alpha1.TunnelGRE}, LoopPrevention: v1alpha1.LoopPreventionSpec{Protocol: v1alpha1.ProtocolSTP}},
		Status: v1alpha1.NetworkClusterStatus{NodesTotal: 3, NodesReady: 2, SubnetsUsed: 3, SubnetsFree: 253,
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: "NodesNotReady", Message: "node-c: OVSUnavailable"}}}}
}
