package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestRunTrace walks the trace over a fake API (pods, NodeSubnets, agent pods) with agents
// that answer canned obr0 verdicts: the real agents and the real exec are in test/realnode.
func TestRunTrace(t *testing.T) {
	pod := func(ns, name, node, ip string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}}
	}
	agentLabels := map[string]string{labelName: agentName}
	sub := func(node, cidr, gw, ip string) *v1alpha1.NodeSubnet {
		return &v1alpha1.NodeSubnet{ObjectMeta: metav1.ObjectMeta{Name: node}, Spec: v1alpha1.NodeSubnetSpec{NodeName: node, CIDR: cidr, Gateway: gw, NodeIP: ip}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme()).
		WithIndex(&corev1.Pod{}, "spec.nodeName", func(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }).
		WithObjects(
			&v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName}, Spec: v1alpha1.NetworkClusterSpec{Tunnel: v1alpha1.TunnelSpec{Type: v1alpha1.TunnelGRE}}},
			sub("n1", "10.244.1.0/24", "10.244.1.1", "172.30.0.1"), sub("n2", "10.244.2.0/24", "10.244.2.1", "172.30.0.2"), sub("n3", "10.244.3.0/24", "10.244.3.1", "172.30.0.3"),
			sub("n4", "10.244.4.0/24", "10.244.4.1", "172.30.0.4"),
			pod("default", "a", "n1", "10.244.1.5", nil), pod("web", "b", "n2", "10.244.2.7", nil), pod("default", "a2", "n1", "10.244.1.6", nil),
			pod(defaultNamespace, "agent-n1", "n1", "172.30.0.1", agentLabels), pod(defaultNamespace, "agent-n2", "n2", "172.30.0.2", agentLabels),
			pod(defaultNamespace, "agent-n3", "n3", "172.30.0.3", agentLabels), pod(defaultNamespace, "agent-n4", "n4", "172.30.0.4", agentLabels),
		).Build()
	hop := func(h TraceHop) string { b, _ := json.Marshal(h); return string(b) }
	type answers map[string]string // agent pod → JSON
	run := func(ans answers, from, to string) (TraceReport, []string) {
		var calls []string
		exec := func(_ context.Context, p *corev1.Pod, container string, cmd []string) (string, error) {
			calls = append(calls, p.Name+": "+strings.Join(cmd[1:], " "))
			if container != "agent" || cmd[0] != agentBinary {
				return "", fmt.Errorf("exec %s %v", container, cmd)
			}
			if a, ok := ans[p.Name]; ok {
				return a, nil
			}
			return "", fmt.Errorf("no answer from %s", p.Name)
		}
		rep, err := runTrace(context.Background(), c, exec, defaultNamespace, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return rep, calls
	}

	// Direct: n1 learned → tunnel to n2; n2 → vobr0.
	rep, calls := run(answers{
		"agent-n1": hop(TraceHop{InPort: "vobr0", Learned: true, Tunnels: []string{"172.30.0.2"}}),
		"agent-n2": hop(TraceHop{InPort: "gre-ac1e0001", Learned: true, Local: []string{"vobr0"}}),
	}, "a", "web/b")
	if rep.Verdict != "delivered" || len(rep.Hops) != 2 || rep.Hops[0].Next != "n2" || rep.FromNode != "n1" || rep.ToNode != "n2" {
		t.Errorf("direct: %+v", rep)
	}
	if len(calls) != 2 || !strings.Contains(calls[0], "--src-gateway=10.244.1.1") || strings.Contains(calls[0], "--from-node-ip") ||
		!strings.Contains(calls[1], "--from-node-ip=172.30.0.1 --node-ip=172.30.0.2") {
		t.Errorf("calls %q", calls)
	}
	// Flooding to both peers: followed towards the destination's node.
	rep, _ = run(answers{
		"agent-n1": hop(TraceHop{Flooded: true, Tunnels: []string{"172.30.0.3", "172.30.0.2"}}),
		"agent-n2": hop(TraceHop{Learned: true, Local: []string{"vobr0"}}),
	}, "a", "web/b")
	if rep.Verdict != "delivered" || rep.Hops[0].Next != "n2" || !rep.Hops[0].Flooded {
		t.Errorf("flooded: %+v", rep)
	}
	// Through a spanning-tree root: n1 → n3 → n2.
	rep, _ = run(answers{
		"agent-n1": hop(TraceHop{Learned: true, Tunnels: []string{"172.30.0.3"}}),
		"agent-n3": hop(TraceHop{Learned: true, Tunnels: []string{"172.30.0.2"}}),
		"agent-n2": hop(TraceHop{Learned: true, Local: []string{"vobr0"}}),
	}, "a", "web/b")
	if rep.Verdict != "delivered" || len(rep.Hops) != 3 || rep.Hops[1].Node != "n3" {
		t.Errorf("via n3: %+v", rep)
	}
	// A flood that reaches the destination's node only through another: the copy to n3 is
	// dropped at n3's blocked end (spanning tree, as it should be), the copy to n4 goes on to
	// n2. The copy that is delivered is the answer, not the first one followed.
	rep, _ = run(answers{
		"agent-n1": hop(TraceHop{Flooded: true, Tunnels: []string{"172.30.0.3", "172.30.0.4"}}),
		"agent-n3": hop(TraceHop{Flooded: true, Dropped: true}),
		"agent-n4": hop(TraceHop{Learned: true, Tunnels: []string{"172.30.0.2"}}),
		"agent-n2": hop(TraceHop{Learned: true, Local: []string{"vobr0"}}),
	}, "a", "web/b")
	if rep.Verdict != "delivered" || len(rep.Hops) != 3 || rep.Hops[0].Next != "n4" || rep.Hops[1].Node != "n4" || rep.Hops[2].Node != "n2" {
		t.Errorf("flood through a blocked end and another node: %+v", rep)
	}
	// No copy delivered: the first copy's end is the answer.
	rep, _ = run(answers{
		"agent-n1": hop(TraceHop{Flooded: true, Tunnels: []string{"172.30.0.3", "172.30.0.4"}}),
		"agent-n3": hop(TraceHop{Flooded: true, Dropped: true}),
		"agent-n4": hop(TraceHop{Flooded: true, Dropped: true}),
	}, "a", "web/b")
	if rep.Verdict != "dropped" || len(rep.Hops) != 2 || rep.Hops[0].Next != "n3" || rep.Hops[1].Node != "n3" {
		t.Errorf("every copy dropped: %+v", rep)
	}
	// Dropped, with ovs-vswitchd's remark.
	rep, _ = run(answers{"agent-n1": hop(TraceHop{Flooded: true, Dropped: true, Notes: []string{"native tunnel routing failed"}})}, "a", "web/b")
	if rep.Verdict != "dropped" || !strings.Contains(rep.Why, "native tunnel routing failed") {
		t.Errorf("dropped: %+v", rep)
	}
	// Same node: the Linux bridge, no agent asked.
	rep, calls = run(answers{}, "a", "a2")
	if rep.Verdict != "local" || len(calls) != 0 {
		t.Errorf("same node: %+v, calls %q", rep, calls)
	}
	var b strings.Builder
	WriteTrace(&b, rep, false)
	if !strings.Contains(b.String(), "Verdict: local") {
		t.Errorf("text: %s", b.String())
	}
}
