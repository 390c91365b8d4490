package controllers

import (
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestComputeStatusHeartbeats: a node whose heartbeat expired stops counting as ready
// whatever its NodeSubnet says, and Degraded names it; a node without a heartbeat (an agent
// from before heartbeats) is judged by its NodeSubnet; a renewed heartbeat recovers.
func TestComputeStatusHeartbeats(t *testing.T) {
	now := metav1.NewTime(t0)
	nodes := []corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.0.0.2", 0, nil), node("c", "10.0.0.3", 0, nil)}
	in := statusInput{Generation: 1, Pool: &defaultPool, Selector: labels.Everything(), Nodes: nodes, Subnets: []v1alpha1.NodeSubnet{
		reported(nsub("a", "10.244.0.0/24", "10.0.0.1"), 1, "True", "Applied"),
		reported(nsub("b", "10.244.1.0/24", "10.0.0.2"), 1, "True", "Applied"),
		reported(nsub("c", "10.244.2.0/24", "10.0.0.3"), 1, "True", "Applied"),
	}}
	// c has no heartbeat Lease at all.
	in.Heartbeats = map[string]time.Time{"a": t0.Add(30 * time.Second), "b": t0.Add(10 * time.Second)}
	st := computeStatus(in, v1alpha1.NetworkClusterStatus{}, now)
	if st.NodesReady != 3 {
		t.Errorf("nodesReady = %d with every heartbeat live, want 3", st.NodesReady)
	}
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected)
	expect(t, st, v1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonAllNodesReady)

	// b's heartbeat expires (exactly at its expiry: expired).
	later := metav1.NewTime(t0.Add(10 * time.Second))
	st = computeStatus(in, st, later)
	if st.NodesReady != 2 || st.NodesTotal != 3 {
		t.Errorf("nodesReady/Total = %d/%d with b silent, want 2/3", st.NodesReady, st.NodesTotal)
	}
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonAgentNotReporting)
	expect(t, st, v1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNodesNotReady)
	if m := condOf(t, st, v1alpha1.ConditionDegraded).Message; !strings.Contains(m, ": b") || strings.Contains(m, "a,") {
		t.Errorf("Degraded message %q must name b only", m)
	}

	// Renewed: recovers.
	in.Heartbeats["b"] = t0.Add(50 * time.Second)
	st = computeStatus(in, st, later)
	expect(t, st, v1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected)
	if st.NodesReady != 3 {
		t.Errorf("nodesReady = %d after the renewal, want 3", st.NodesReady)
	}
}

// TestAgentNotReportingMessageBounded: many silent nodes give a bounded message with the count.
func TestAgentNotReportingMessageBounded(t *testing.T) {
	in := statusInput{Generation: 1, Pool: &defaultPool, Selector: labels.Everything(), Heartbeats: map[string]time.Time{}}
	for i := range 50 {
		n := node(nodeName(i), "10.0.1."+strconv.Itoa(i+1), 0, nil)
		in.Nodes = append(in.Nodes, n)
		in.Subnets = append(in.Subnets, reported(nsub(n.Name, "10.244."+strconv.Itoa(i)+".0/24", "10.0.1."+strconv.Itoa(i+1)), 1, "True", "Applied"))
		in.Heartbeats[n.Name] = t0.Add(-time.Second)
	}
	st := computeStatus(in, v1alpha1.NetworkClusterStatus{}, metav1.NewTime(t0))
	m := condOf(t, st, v1alpha1.ConditionDegraded).Message
	if !strings.HasPrefix(m, "50 agents") || !strings.Contains(m, "and 40 more") || len(m) > 400 {
		t.Errorf("message for 50 silent nodes = %q (%d bytes), want the count, 10 names and the rest counted", m, len(m))
	}
}

func nodeName(i int) string { return "node-" + strconv.Itoa(100+i) }

func TestHeartbeatExpiriesAndNext(t *testing.T) {
	lease := func(name string, renew *time.Time, dur *int32, heartbeat bool) coordinationv1.Lease {
		l := coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		if heartbeat {
			l.Labels[v1alpha1.LabelHeartbeat] = "true"
		}
		if renew != nil {
			l.Spec.RenewTime = &metav1.MicroTime{Time: *renew}
		}
		l.Spec.LeaseDurationSeconds = dur
		return l
	}
	got := heartbeatExpiries([]coordinationv1.Lease{
		lease(v1alpha1.HeartbeatLeaseName("a"), ptr.To(t0), ptr.To[int32](40), true),
		lease(v1alpha1.HeartbeatLeaseName("never"), nil, ptr.To[int32](40), true),
		lease(v1alpha1.HeartbeatLeaseName("unlabelled"), ptr.To(t0), ptr.To[int32](40), false),
		lease("subnet-claim-x", ptr.To(t0), ptr.To[int32](40), true),
	})
	if len(got) != 2 || !got["a"].Equal(t0.Add(40*time.Second)) || !got["never"].IsZero() {
		t.Errorf("expiries = %v, want a at t0+40s and never expired", got)
	}
	if d := nextExpiry(got, t0.Add(15*time.Second)); d != 25*time.Second {
		t.Errorf("nextExpiry = %v, want 25s (a; never is already expired)", d)
	}
	if d := nextExpiry(got, t0.Add(time.Minute)); d != 0 {
		t.Errorf("nextExpiry with all expired = %v, want 0", d)
	}
}
