package agent

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

func TestTransitions(t *testing.T) {
	ready := func(gen int64, peers ...v1alpha1.PeerStatus) v1alpha1.NodeSubnetStatus {
		return v1alpha1.NodeSubnetStatus{ObservedGeneration: gen, UnhealthyPeers: peers, Tunnels: v1alpha1.TunnelSummary{Desired: 2},
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonApplied, Message: "2 gre tunnels"}}}
	}
	notReady := func(reason string) v1alpha1.NodeSubnetStatus {
		return v1alpha1.NodeSubnetStatus{ObservedGeneration: 1,
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: "m"}}}
	}
	down := v1alpha1.PeerStatus{NodeName: "n2", Port: "gre-ac1e0002", Reason: v1alpha1.PeerReasonDown, Message: "BFD down"}
	peers := map[string]bool{"n1": true, "n2": true}
	reasons := func(es []agentEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Type+"/"+e.Reason)
		}
		return out
	}
	tests := []struct {
		name       string
		prev, next v1alpha1.NodeSubnetStatus
		res        Result
		peers      map[string]bool
		want       []string
	}{
		{"first Ready", v1alpha1.NodeSubnetStatus{}, ready(1), Result{HostChanges: []string{"kbr0: created"}}, peers, []string{"Normal/NodeReady"}},
		{"steady", ready(1), ready(1), Result{}, peers, nil},
		{"not ready", ready(1), notReady(v1alpha1.ReasonHostConflict), Result{}, peers, []string{"Warning/NodeNotReady"}},
		{"same reason again", notReady(v1alpha1.ReasonHostConflict), notReady(v1alpha1.ReasonHostConflict), Result{}, peers, nil},
		{"another reason", notReady(v1alpha1.ReasonHostConflict), notReady(v1alpha1.ReasonOVSUnavailable), Result{}, peers, []string{"Warning/NodeNotReady"}},
		{"back", notReady(v1alpha1.ReasonOVSUnavailable), ready(1), Result{}, peers, []string{"Normal/NodeReady"}},
		{"host drift", ready(1), ready(1), Result{HostChanges: []string{"kbr0: up"}}, peers, []string{"Normal/DriftRepaired"}},
		{"OVS drift", ready(1), ready(1), Result{OVSOps: 2}, peers, []string{"Normal/DriftRepaired"}},
		{"a spec change is not drift", ready(1), ready(2), Result{HostChanges: []string{"kbr0: mtu 1450 -> 1400"}}, peers, nil},
		{"a new peer is not drift", ready(1), func() v1alpha1.NodeSubnetStatus { s := ready(1); s.Tunnels.Desired = 3; return s }(), Result{OVSOps: 3}, peers, nil},
		{"peer down", ready(1), ready(1, down), Result{}, peers, []string{"Warning/TunnelDown"}},
		{"peer still down", ready(1, down), ready(1, down), Result{}, peers, nil},
		{"peer up", ready(1, down), ready(1), Result{}, peers, []string{"Normal/TunnelUp"}},
		{"peer gone is not up", ready(1, down), ready(1), Result{}, map[string]bool{"n1": true}, nil},
		{"a failed pass says nothing of tunnels", ready(1, down), notReady(v1alpha1.ReasonOVSUnavailable), Result{}, peers, []string{"Warning/NodeNotReady"}},
	}
	for _, tc := range tests {
		got := reasons(transitions(tc.prev, tc.next, tc.res, tc.peers))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A full list may hide a peer that is still down: no "up" for the ones not listed.
	var full []v1alpha1.PeerStatus
	for i := 0; i < v1alpha1.MaxUnhealthyPeers; i++ {
		full = append(full, v1alpha1.PeerStatus{NodeName: string(rune('a' + i)), Reason: v1alpha1.PeerReasonDown})
	}
	prev := ready(1, append(full, down)...)
	if got := reasons(transitions(prev, ready(1, full...), Result{}, peers)); len(got) != 0 {
		t.Errorf("full list: %v, want no TunnelUp", got)
	}
}
