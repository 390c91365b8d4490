package agent

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Events the agent records about its NodeSubnet (events.k8s.io; kubectl describe nodesubnet
// shows them): the transitions a person cares about, not every pass. They go through
// controller-runtime's recorder, which folds repeats of one event into a series (a count and
// a last-seen time patched at most every few minutes), so a flapping peer, which alternates
// two events, costs the API server two series, not a write per flap.
const (
	EventReady         = "NodeReady"     // Normal: Ready after not being Ready (or the first time)
	EventNotReady      = "NodeNotReady"  // Warning: a new not-ready reason (HostConflict, OVSUnavailable, SpanningTreeLimit …)
	EventDriftRepaired = "DriftRepaired" // Normal: something the agent owns changed under it and was put back
	EventTunnelDown    = "TunnelDown"    // Warning: a peer became unhealthy
	EventTunnelUp      = "TunnelUp"      // Normal: an unhealthy peer is healthy again
)

// agentEvent is one event to record.
type agentEvent struct {
	Type, Reason, Action, Note string
}

// transitions returns the events between prev (the status before this pass) and next (the
// one it writes), given what the pass changed: pure. Peers that left the mesh are not "up".
func transitions(prev, next v1alpha1.NodeSubnetStatus, res Result, peers map[string]bool) []agentEvent {
	var out []agentEvent
	was := meta.FindStatusCondition(prev.Conditions, v1alpha1.ConditionReady)
	is := meta.FindStatusCondition(next.Conditions, v1alpha1.ConditionReady)
	wasReady := was != nil && was.Status == metav1.ConditionTrue
	switch {
	case is == nil:
	case is.Status == metav1.ConditionTrue && !wasReady:
		out = append(out, agentEvent{corev1.EventTypeNormal, EventReady, "Apply", is.Message})
	case is.Status != metav1.ConditionTrue && (wasReady || was == nil || was.Reason != is.Reason):
		out = append(out, agentEvent{corev1.EventTypeWarning, EventNotReady, "Apply", is.Reason + ": " + is.Message})
	}
	// Drift: the node was Ready for this generation and the pass still had to change the
	// host, or OVS with the same peers (a new peer's tunnel is not drift).
	if wasReady && prev.ObservedGeneration == next.ObservedGeneration &&
		(len(res.HostChanges) > 0 || (res.OVSOps > 0 && prev.Tunnels.Desired == next.Tunnels.Desired)) {
		what := res.HostChanges
		if len(what) > 3 {
			what = append(what[:3:3], fmt.Sprintf("and %d more", len(res.HostChanges)-3))
		}
		note := "repaired: " + strings.Join(what, "; ")
		if len(res.HostChanges) == 0 {
			note = fmt.Sprintf("repaired: %d OVSDB operations put the bridge and tunnels back", res.OVSOps)
		}
		out = append(out, agentEvent{corev1.EventTypeNormal, EventDriftRepaired, "Repair", note})
	}
	// Tunnels: only while the node reports its tunnels (a pass that failed earlier did not
	// read them, and its empty list would look like every peer recovering).
	if is == nil || (is.Status != metav1.ConditionTrue && is.Reason != v1alpha1.ReasonSpanningTreeConverging && is.Reason != v1alpha1.ReasonTunnelsNotLive) {
		return out
	}
	before := map[string]v1alpha1.PeerStatus{}
	for _, p := range prev.UnhealthyPeers {
		before[p.NodeName] = p
	}
	after := map[string]bool{}
	for _, p := range next.UnhealthyPeers {
		after[p.NodeName] = true
		if b, ok := before[p.NodeName]; !ok || b.Reason != p.Reason {
			out = append(out, agentEvent{corev1.EventTypeWarning, EventTunnelDown, "Tunnel",
				fmt.Sprintf("tunnel %s to %s: %s: %s", p.Port, p.NodeName, p.Reason, p.Message)})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(before)) {
		p := before[name]
		if !after[name] && peers[name] && len(next.UnhealthyPeers) < v1alpha1.MaxUnhealthyPeers {
			out = append(out, agentEvent{corev1.EventTypeNormal, EventTunnelUp, "Tunnel",
				fmt.Sprintf("tunnel %s to %s is healthy again", p.Port, name)})
		}
	}
	return out
}

// emit records the events between own's status and next on own (no recorder: none).
// It also updates the metrics (metrics.go) from the pass; applied says Apply succeeded.
func (r *Reconciler) emit(own *v1alpha1.NodeSubnet, next v1alpha1.NodeSubnetStatus, res Result, applied bool, subnets []v1alpha1.NodeSubnet) {
	peers := map[string]bool{}
	for _, s := range subnets {
		peers[s.Spec.NodeName] = true
	}
	evs := transitions(own.Status, next, res, peers)
	observePass(next, res, applied, evs)
	if r.Recorder == nil {
		return
	}
	for _, e := range evs {
		r.Recorder.Eventf(own, nil, e.Type, e.Reason, e.Action, "%s", e.Note)
	}
}
