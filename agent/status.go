package agent

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// readyStatus returns st updated for a successful apply: Ready, the tunnel counts and the
// peers that need attention, the MTU in use and the generation of the NetworkCluster that
// was applied. Pure, like Desired: the reconciler patches the result only when it differs.
//
// Its size does not depend on the cluster's: counts, and at most MaxUnhealthyPeers peers.
// A peer joining changes a count or two and the Ready message, so the merge patch the
// reconciler sends for it is a few hundred bytes at any cluster size.
func readyStatus(st v1alpha1.NodeSubnetStatus, generation int64, s NodeState, r Result) v1alpha1.NodeSubnetStatus {
	st = *st.DeepCopy()
	t := r.Tunnels
	st.ObservedGeneration = generation
	st.TunnelCount = int32(t.Count)
	st.Tunnels = t.Summary
	st.UnhealthyPeers = nil
	if len(t.Unhealthy) > 0 {
		st.UnhealthyPeers = append([]v1alpha1.PeerStatus(nil), t.Unhealthy[:min(len(t.Unhealthy), v1alpha1.MaxUnhealthyPeers)]...)
	}
	st.MTU = int32(s.MTU)
	msg := fmt.Sprintf("%d %s tunnels on %s (%s), MTU %d", t.Count, s.OVS.TunnelType, s.OVS.Bridge.Name, s.OVS.Protocol, s.MTU)
	if s.OVS.BFD {
		msg += fmt.Sprintf(", BFD: %d/%d peers up", t.Summary.Up, t.Summary.Desired)
	}
	if t.Summary.Skipped > 0 {
		msg += fmt.Sprintf(", %d peers left out for their address (see unhealthyPeers)", t.Summary.Skipped)
	}
	cond := metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonApplied,
		Message: msg, ObservedGeneration: generation,
	}
	// Everything is programmed, but a tunnel port that ovs-vswitchd has not set up, or that
	// spanning tree has not yet moved to a stable state, drops traffic: Ready (and so the
	// NetworkCluster's Available, and `kubectl wait`) must not claim pods can talk before
	// they can.
	if !t.Ready() {
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonSpanningTreeConverging
		what := "spanning tree is still converging on"
		if !s.OVS.Protocol.SpanningTree() {
			cond.Reason, what = v1alpha1.ReasonTunnelsNotLive, "ovs-vswitchd has not yet set up"
		}
		cond.Message = fmt.Sprintf("%s; %s %d of %d tunnel ports", msg, what, t.Summary.Converging+t.Summary.Missing, t.Summary.Desired)
		if t.VethBlocked != "" {
			cond.Message += fmt.Sprintf(", and the veth port %s does not forward yet (%s)", s.OVS.VethPort, t.VethBlocked)
		}
		if u := firstNotReady(t.Unhealthy); u != nil {
			cond.Message += fmt.Sprintf(" (first: %s, %s: %s)", u.NodeName, u.Reason, u.Message)
		}
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionCleanedUp)
	return st
}

// firstNotReady is the first unhealthy peer that holds Ready back (one BFD calls down, or
// one left out for its address, does not).
func firstNotReady(peers []v1alpha1.PeerStatus) *v1alpha1.PeerStatus {
	for i := range peers {
		switch peers[i].Reason {
		case v1alpha1.PeerReasonDown, v1alpha1.PeerReasonUnusableAddress, v1alpha1.PeerReasonDuplicateAddress:
		default:
			return &peers[i]
		}
	}
	return nil
}

// notReadyStatus returns st with Ready=False, the reason taken from err. The rest of the
// status (peers, MTU) is kept: it still describes what is on the node.
func notReadyStatus(st v1alpha1.NodeSubnetStatus, generation int64, err error) v1alpha1.NodeSubnetStatus {
	st = *st.DeepCopy()
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonOf(err),
		Message: truncate(err.Error(), maxConditionMessage), ObservedGeneration: generation,
	})
	return st
}

// cleanedStatus returns st after a teardown request: CleanedUp True (or False with the
// error), Ready False, no tunnels.
func cleanedStatus(st v1alpha1.NodeSubnetStatus, generation int64, err error) v1alpha1.NodeSubnetStatus {
	st = *st.DeepCopy()
	st.ObservedGeneration = generation
	cond := metav1.Condition{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonCleanedUp, Message: "the OVS bridge, the Linux bridge, the veth, the route, the masquerade table and the CNI config are removed",
		ObservedGeneration: generation}
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonCleanupFailed, truncate(err.Error(), maxConditionMessage)
	} else {
		st.TunnelCount, st.Tunnels, st.UnhealthyPeers, st.MTU = 0, v1alpha1.TunnelSummary{}, nil, 0
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonTornDown,
		Message: "teardown requested: this node is leaving the ovsmesh network", ObservedGeneration: generation,
	})
	return st
}

// maxConditionMessage keeps condition messages within the API's 32 KiB limit with room to
// spare; a peer's message has a 256-character limit of its own (PeerStatus.Message).
const maxConditionMessage = 4096

// truncate cuts s to at most max bytes, marking the cut with "…".
func truncate(s string, max int) string {
	const mark = "…"
	if len(s) > max {
		return s[:max-len(mark)] + mark
	}
	return s
}
