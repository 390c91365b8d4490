package agent

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// readyStatus returns st updated for a successful apply: Ready=True, the tunnels and their
// peers' state, the MTU in use and the generation of the NetworkCluster that was applied.
// Pure, like Desired: the reconciler patches the result only when it differs.
func readyStatus(st v1alpha1.NodeSubnetStatus, generation int64, s NodeState, r Result) v1alpha1.NodeSubnetStatus {
	st = *st.DeepCopy()
	st.ObservedGeneration = generation
	st.TunnelCount = int32(r.TunnelCount)
	st.Peers = r.Peers
	st.MTU = int32(s.MTU)
	up, known := 0, 0
	for _, p := range r.Peers {
		if p.State != v1alpha1.PeerUnknown {
			known++
		}
		if p.State == v1alpha1.PeerUp {
			up++
		}
	}
	msg := fmt.Sprintf("%d %s tunnels on %s, MTU %d", r.TunnelCount, s.OVS.TunnelType, s.OVS.Bridge, s.MTU)
	if known > 0 {
		msg += fmt.Sprintf(", BFD: %d/%d peers up", up, len(r.Peers))
	}
	cond := metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonApplied,
		Message: msg, ObservedGeneration: generation,
	}
	// Everything is programmed, but a tunnel port that spanning tree has not yet moved to a
	// stable state drops traffic: Ready (and so the NetworkCluster's Available, and
	// `kubectl wait`) must not claim pods can talk before they can.
	if n := converging(r.Peers); n > 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonSpanningTreeConverging
		cond.Message = fmt.Sprintf("%s; spanning tree is still converging on %d of %d tunnel ports", msg, n, len(r.Peers))
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionCleanedUp)
	return st
}

// converging counts the tunnel ports in a transitional spanning-tree state: STP's listening
// and learning (2 × forward delay after a port appears), RSTP's learning, or no state yet
// (ovs-vswitchd has not reported the new port). Blocking and discarding are stable: they are
// how the loop is broken.
func converging(peers []v1alpha1.PeerStatus) int {
	n := 0
	for _, p := range peers {
		switch p.STPState {
		case "", "listening", "learning":
			n++
		}
	}
	return n
}

// notReadyStatus returns st with Ready=False, the reason taken from err. The rest of the
// status (peers, MTU) is kept: it still describes what is on the node.
func notReadyStatus(st v1alpha1.NodeSubnetStatus, generation int64, err error) v1alpha1.NodeSubnetStatus {
	st = *st.DeepCopy()
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonOf(err),
		Message: truncate(err.Error()), ObservedGeneration: generation,
	})
	return st
}

// cleanedStatus returns st after a teardown request: CleanedUp True (or False with the
// error), Ready False, no tunnels.
func cleanedStatus(st v1alpha1.NodeSubnetStatus, generation int64, err error) v1alpha1.NodeSubnetStatus {
	st = *st.DeepCopy()
	st.ObservedGeneration = generation
	cond := metav1.Condition{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue,
		Reason: ReasonCleanedUp, Message: "the OVS bridge, the Linux bridge, the veth, the route, the masquerade table and the CNI config are removed",
		ObservedGeneration: generation}
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonCleanupFailed, truncate(err.Error())
	} else {
		st.TunnelCount, st.Peers, st.MTU = 0, nil, 0
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonTornDown,
		Message: "teardown requested: this node is leaving the ovsmesh network", ObservedGeneration: generation,
	})
	return st
}

// truncate keeps condition messages within the API's 32 KiB limit with room to spare.
func truncate(s string) string {
	const max = 4096
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
