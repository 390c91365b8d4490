package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestAdmissionPolicyAgentOnlySetsItsNodesNetworkCondition: with the agent RBAC and policy
// the operator creates, an agent may set the NetworkUnavailable condition of its own Node —
// and nothing else of any Node's status.
func TestAdmissionPolicyAgentOnlySetsItsNodesNetworkCondition(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	nodeA, nodeB := e.nodeName(0)+"-a", e.nodeName(1)+"-b"
	e.createCluster(nil)
	e.mustNode(nodeA, "192.168.9.10", nil)
	e.mustNode(nodeB, "192.168.9.11", nil)
	e.waitSubnets(30*time.Second, nodeA, nodeB)
	e.eventually(20*time.Second, "the operator's agent policy", e.agentPolicyInstalled)
	agentA := e.agentClient(nodeA)

	cond := func(typ, status, reason string) []byte {
		return []byte(fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q,"reason":%q,"message":"test","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
			typ, status, reason, time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)))
	}
	patch := func(c client.Client, node string, body []byte, opts ...client.SubResourcePatchOption) error {
		n := &corev1.Node{}
		n.Name = node
		return c.Status().Patch(e.ctx(), n, client.RawPatch(types.StrategicMergePatchType, body), opts...)
	}
	// RBAC and the policy load asynchronously: wait until the agent may set its own.
	e.eventually(30*time.Second, "agent A to set its own Node's NetworkUnavailable", func() error {
		return patch(agentA, nodeA, cond("NetworkUnavailable", "False", "OvsmeshIsUp"))
	})
	e.eventually(30*time.Second, "the policy to refuse agent A on node B (dry run)", func() error {
		err := patch(agentA, nodeB, cond("NetworkUnavailable", "True", "OvsmeshNotReady"), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "of its own Node") {
			return fmt.Errorf("not refused by the policy: %v", err)
		}
		return nil
	})
	refused := []struct {
		what string
		node string
		body []byte
		want string
	}{
		{"another node's NetworkUnavailable", nodeB, cond("NetworkUnavailable", "True", "OvsmeshNotReady"), "of its own Node"},
		{"its own Node's Ready condition", nodeA, cond("Ready", "False", "Hijacked"), "only the NetworkUnavailable condition"},
		{"its own Node's addresses", nodeA, []byte(`{"status":{"addresses":[{"type":"InternalIP","address":"10.9.9.9"}]}}`), "only the NetworkUnavailable condition"},
	}
	for _, r := range refused {
		err := patch(agentA, r.node, r.body)
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("agent A changing %s: %v, want the policy's refusal (%q)", r.what, err, r.want)
		} else {
			t.Logf("agent A changing %s: %v", r.what, err)
		}
	}
	var a corev1.Node
	if err := e.c.Get(e.ctx(), client.ObjectKey{Name: nodeA}, &a); err != nil {
		t.Fatal(err)
	}
	for _, c := range a.Status.Conditions {
		if c.Type == "Ready" && c.Reason == "Hijacked" {
			t.Error("the agent's Ready condition reached the Node")
		}
	}
	if len(a.Status.Addresses) == 0 || a.Status.Addresses[len(a.Status.Addresses)-1].Address == "10.9.9.9" {
		t.Errorf("node A's addresses: %+v", a.Status.Addresses)
	}
	var b corev1.Node
	if err := e.c.Get(e.ctx(), client.ObjectKey{Name: nodeB}, &b); err != nil {
		t.Fatal(err)
	}
	for _, c := range b.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			t.Errorf("node B got %+v from agent A", c)
		}
	}
}
