package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

func reported(s v1alpha1.NodeSubnet, gen int64, ready metav1.ConditionStatus, reason string) v1alpha1.NodeSubnet {
	s.Status.ObservedGeneration = gen
	s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: ready, Reason: reason}}
	return s
}

func condOf(t *testing.T, st v1alpha1.NetworkClusterStatus, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil {
		t.Fatalf("no %s condition", typ)
	}
	return *c
}

func expect(t *testing.T, st v1alpha1.NetworkClusterStatus, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	if c := condOf(t, st, typ); c.Status != status || c.Reason != reason {
		t.Errorf("%s = %s/%s (%s), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	}
}

func TestComputeStatus(t *testing.T) {
	now := metav1.NewTime(t0)
	nodes := []corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.0.0.2", 0, nil), node("c", "10.0.0.3", 0, nil)}
	a, b, c := nsub("a", "10.244.0.0/24", "10.0.0.1"), nsub("b", "10.244.1.0/24", "10.0.0.2"), nsub("c", "10.244.2.0/24", "10.0.0.3")
	in := statusInput{Generation: 4, Pool: &defaultPool, Selector: labels.Everything(), Nodes: nodes}

	// Nothing reported yet.
	in.Subnets = []v1alpha1.NodeSubnet{a, b, c}
	st := computeStatus(in, v1alpha1.NetworkClusterStatus{}, now)
	if st.NodesTotal != 3 || st.NodesReady != 0 || st.SubnetsUsed != 3 || st.SubnetsFree != 253 || st.ObservedGeneration != 4 {
		t.Errorf("counts %+v", st)
	}
	expect(t, st, v1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNodesNotReady)
	expect(t, st, v1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonWaitingForAgents)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected)

	// All ready for this generation.
	in.Subnets = []v1alpha1.NodeSubnet{reported(a, 4, "True", "Applied"), reported(b, 4, "True", "Applied"), reported(c, 4, "True", "Applied")}
	ready := computeStatus(in, st, metav1.NewTime(t0.Add(time.Minute)))
	if ready.NodesReady != 3 {
		t.Errorf("nodesReady %d", ready.NodesReady)
	}
	expect(t, ready, v1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonAllNodesReady)
	expect(t, ready, v1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonAsExpected)
	if ltt := condOf(t, ready, v1alpha1.ConditionDegraded).LastTransitionTime; !ltt.Equal(&now) {
		t.Errorf("Degraded did not change but its lastTransitionTime moved to %s", ltt)
	}
	// Recomputing the same world gives the same status (no write on a no-op pass).
	if again := computeStatus(in, ready, metav1.NewTime(t0.Add(2*time.Minute))); !equalStatus(again, ready) {
		t.Errorf("recomputation changed the status:\n%+v\n%+v", again, ready)
	}

	// A new generation: nobody applied it yet; the old config still carries traffic.
	in.Generation = 5
	st = computeStatus(in, ready, now)
	if st.NodesReady != 0 {
		t.Errorf("nodesReady %d for a generation nobody applied", st.NodesReady)
	}
	expect(t, st, v1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonAllNodesReady)
	expect(t, st, v1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonRollingOut)

	// An agent has programmed the node and waits for spanning tree: progress, not a fault.
	in.Subnets = []v1alpha1.NodeSubnet{reported(a, 5, "True", "Applied"), reported(b, 5, "False", v1alpha1.ReasonSpanningTreeConverging), reported(c, 5, "True", "Applied")}
	st = computeStatus(in, st, now)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected)
	expect(t, st, v1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonSpanningTreeConverging)
	expect(t, st, v1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNodesNotReady)

	// An agent reports failure.
	in.Subnets[1] = reported(b, 5, "False", "OVSUnavailable")
	st = computeStatus(in, st, now)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonNodesNotReady)
	expect(t, st, v1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNodesNotReady)

	// The agent objects cannot be applied: that outranks node trouble.
	in.ApplyErr = errors.New("forbidden")
	st = computeStatus(in, st, now)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonAgentDeployFailed)
}

func TestComputeStatusExhaustionAndNoNodes(t *testing.T) {
	now := metav1.NewTime(t0)
	pool, _ := NewPool("10.99.0.0/29", 30)
	nodes := []corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.0.0.2", 0, nil), node("late", "10.0.0.3", 0, nil), node("noip", "", 0, nil)}
	in := statusInput{Generation: 1, Pool: &pool, Selector: labels.Everything(), Nodes: nodes,
		Subnets: []v1alpha1.NodeSubnet{nsub("a", "10.99.0.0/30", "10.0.0.1"), nsub("b", "10.99.0.4/30", "10.0.0.2")}}
	st := computeStatus(in, v1alpha1.NetworkClusterStatus{}, now)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonSubnetsExhausted)
	if m := condOf(t, st, v1alpha1.ConditionDegraded).Message; !strings.Contains(m, "late") || strings.Contains(m, "noip") {
		t.Errorf("exhaustion message %q must name the node left out (and not the one without address)", m)
	}
	if st.SubnetsFree != 0 || st.SubnetsUsed != 2 || st.NodesTotal != 4 {
		t.Errorf("counts %+v", st)
	}

	in.Selector = labels.SelectorFromSet(map[string]string{"x": "y"})
	st = computeStatus(in, st, now)
	expect(t, st, v1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNoNodes)
	expect(t, st, v1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonNoNodes)
}

// TestComputeStatusSpanningTreeLimit: 256 selected nodes need 255 tunnels per node, one more
// than STP covers: Degraded names the limit and the way out; RSTP and SplitHorizon are fine.
func TestComputeStatusSpanningTreeLimit(t *testing.T) {
	now := metav1.NewTime(t0)
	pool, _ := NewPool("10.0.0.0/8", 24)
	var nodes []corev1.Node
	for i := 0; i < 256; i++ {
		nodes = append(nodes, node(fmt.Sprintf("n%03d", i), fmt.Sprintf("172.16.%d.%d", i/250, 1+i%250), 0, nil))
	}
	in := statusInput{Generation: 1, Pool: &pool, Selector: labels.Everything(), Nodes: nodes, Protocol: v1alpha1.ProtocolSTP}
	st := computeStatus(in, v1alpha1.NetworkClusterStatus{}, now)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonSpanningTreeLimit)
	if m := condOf(t, st, v1alpha1.ConditionDegraded).Message; !strings.Contains(m, "256 selected nodes need 255 tunnels") ||
		!strings.Contains(m, "at most 254") || !strings.Contains(m, "SplitHorizon (no limit) or RSTP (up to 4095 nodes)") {
		t.Errorf("limit message %q", m)
	}
	in.Protocol = "" // defaulted by the API server; an empty value means STP
	expect(t, computeStatus(in, st, now), v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonSpanningTreeLimit)
	for _, p := range []v1alpha1.LoopPreventionProtocol{v1alpha1.ProtocolRSTP, v1alpha1.ProtocolSplitHorizon} {
		in.Protocol = p
		if c := condOf(t, computeStatus(in, st, now), v1alpha1.ConditionDegraded); c.Reason == ReasonSpanningTreeLimit {
			t.Errorf("%s with 256 nodes: %+v", p, c)
		}
	}
	in.Protocol, in.Nodes = v1alpha1.ProtocolSTP, nodes[:255]
	if c := condOf(t, computeStatus(in, st, now), v1alpha1.ConditionDegraded); c.Reason == ReasonSpanningTreeLimit {
		t.Errorf("STP with 255 nodes (254 tunnels each) is within the limit: %+v", c)
	}
}

func TestPlanUninstall(t *testing.T) {
	clean := nsub("a", "10.244.0.0/24", "10.0.0.1")
	clean.Spec.Teardown = true
	clean.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue, Reason: "Removed"}}
	dirty := nsub("b", "10.244.1.0/24", "10.0.0.2")

	st := planUninstall([]v1alpha1.NodeSubnet{clean, dirty}, t0, t0.Add(30*time.Second), 2*time.Minute)
	if len(st.RequestTeardown) != 1 || st.RequestTeardown[0].Name != "b" {
		t.Errorf("teardown requests %+v", st.RequestTeardown)
	}
	if len(st.Pending) != 1 || st.Wait != 90*time.Second || st.TimedOut {
		t.Errorf("waiting: %+v", st)
	}
	st = planUninstall([]v1alpha1.NodeSubnet{clean, dirty}, t0, t0.Add(2*time.Minute), 2*time.Minute)
	if !st.TimedOut || st.Wait != 0 {
		t.Errorf("after the timeout: %+v", st)
	}
	st = planUninstall([]v1alpha1.NodeSubnet{clean}, t0, t0, 2*time.Minute)
	if st.TimedOut || st.Wait != 0 || len(st.Pending) != 0 {
		t.Errorf("all clean: %+v", st)
	}
}

func equalStatus(a, b v1alpha1.NetworkClusterStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.NodesTotal != b.NodesTotal || a.NodesReady != b.NodesReady ||
		a.SubnetsUsed != b.SubnetsUsed || a.SubnetsFree != b.SubnetsFree || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || !x.LastTransitionTime.Equal(&y.LastTransitionTime) {
			return false
		}
	}
	return true
}

// TestComputeStatusAddressConflicts: a cluster CIDR holding a node's InternalIP, and two
// Nodes with one InternalIP, are Degraded with the nodes and addresses named.
func TestComputeStatusAddressConflicts(t *testing.T) {
	now := metav1.NewTime(t0)
	nodes := []corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.244.3.4", 0, nil)}
	in := statusInput{Generation: 1, Pool: &defaultPool, Selector: labels.Everything(), Nodes: nodes}
	st := computeStatus(in, v1alpha1.NetworkClusterStatus{}, now)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonClusterCIDRConflict)
	if m := condOf(t, st, v1alpha1.ConditionDegraded).Message; !strings.Contains(m, "10.244.0.0/16 contains the InternalIP of b (10.244.3.4)") {
		t.Errorf("message %q", m)
	}
	in.Nodes = []corev1.Node{node("a", "10.0.0.1", 0, nil), node("c", "10.0.0.7", 0, nil), node("b", "10.0.0.7", 0, nil)}
	st = computeStatus(in, st, now)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonDuplicateNodeIP)
	if m := condOf(t, st, v1alpha1.ConditionDegraded).Message; !strings.Contains(m, "10.0.0.7: b, c") || strings.Contains(m, "10.0.0.1") {
		t.Errorf("message %q", m)
	}
}
