package controllers

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// offsetClock is the real clock plus an offset a test moves forward: time passes as usual
// (so RequeueAfter works), and a jump stands in for an agent that stopped renewing long ago.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// beat creates or renews node's heartbeat Lease as its agent would: renewed at clk's now,
// valid for duration.
func (e *opEnv) beat(clk *offsetClock, node string, duration time.Duration) {
	e.t.Helper()
	l := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: e.ns, Name: v1alpha1.HeartbeatLeaseName(node)}
	err := e.c.Get(e.ctx(), key, l)
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: key.Name,
			Labels: map[string]string{v1alpha1.LabelHeartbeat: "true", LabelPartOf: "ovsmesh"}}}
	} else if err != nil {
		e.t.Fatal(err)
	}
	l.Spec.HolderIdentity = ptr.To(node)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(duration.Seconds()))
	l.Spec.RenewTime = &metav1.MicroTime{Time: clk.Now()}
	if l.ResourceVersion == "" {
		err = e.c.Create(e.ctx(), l)
	} else {
		err = e.c.Update(e.ctx(), l)
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// degradedNaming waits until Degraded is AgentNotReporting naming exactly silent among
// names, with nodesReady counting the others.
func (e *opEnv) degradedNaming(names []string, silent string) {
	e.t.Helper()
	e.eventually(20*time.Second, "Degraded AgentNotReporting naming "+silent, func() error {
		st := e.cluster().Status
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDegraded)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonAgentNotReporting {
			return fmt.Errorf("Degraded %+v", c)
		}
		for _, n := range names {
			if strings.Contains(c.Message, n) != (n == silent) {
				return fmt.Errorf("message %q: %s named=%v", c.Message, n, n != silent)
			}
		}
		if int(st.NodesReady) != len(names)-1 {
			return fmt.Errorf("nodesReady %d, want %d", st.NodesReady, len(names)-1)
		}
		return nil
	})
}

// TestHeartbeatExpiryDegradesAndRecovers: agents report Ready and renew their heartbeat;
// one whose Lease expires stops counting as ready and Degraded names it, both when the expiry
// passes with nothing else happening (the pass requeued at the expiry, no polling, no event)
// and when its renewals stopped long ago (the clock jumps); a renewal recovers. Uninstall
// removes the heartbeat Leases with the rest.
func TestHeartbeatExpiryDegradesAndRecovers(t *testing.T) {
	e := newOpEnv(t)
	clk := &offsetClock{}
	e.startManager(Options{Now: clk.Now, CleanupTimeout: time.Minute})
	names := e.installed(2)
	gen := e.cluster().Generation
	for _, n := range names {
		e.setAgentStatus(n, func(st *v1alpha1.NodeSubnetStatus) {
			st.ObservedGeneration = gen
			meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, "True", "Applied"))
		})
	}
	e.beat(clk, names[0], v1alpha1.HeartbeatLeaseDuration)
	e.eventually(20*time.Second, "Available with a live heartbeat", func() error {
		st := e.cluster().Status
		if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionAvailable) || meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionDegraded) || st.NodesReady != 2 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})

	// names[1]'s first heartbeat is short: it expires 3 s on, and nothing else happens.
	e.beat(clk, names[1], 3*time.Second)
	e.degradedNaming(names, names[1])
	e.beat(clk, names[1], v1alpha1.HeartbeatLeaseDuration)
	e.eventually(20*time.Second, "recovery after the renewal", func() error {
		st := e.cluster().Status
		if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionDegraded) || st.NodesReady != 2 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})

	// Both stop renewing for longer than the lease duration; then names[0]'s agent is back.
	clk.Advance(v1alpha1.HeartbeatLeaseDuration + time.Second)
	e.beat(clk, names[0], v1alpha1.HeartbeatLeaseDuration)
	e.degradedNaming(names, names[1])
	e.beat(clk, names[1], v1alpha1.HeartbeatLeaseDuration)
	e.eventually(20*time.Second, "recovery after names[1] renews", func() error {
		st := e.cluster().Status
		if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionAvailable) || meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionDegraded) {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})

	if err := e.c.Delete(e.ctx(), e.cluster()); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		e.eventually(20*time.Second, "teardown on "+n, func() error {
			if s, err := e.subnet(n); err != nil || !s.Spec.Teardown {
				return fmt.Errorf("teardown not set (%v)", err)
			}
			return nil
		})
		e.setAgentStatus(n, func(st *v1alpha1.NodeSubnetStatus) {
			meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionCleanedUp, "True", "Removed"))
		})
	}
	e.eventually(30*time.Second, "uninstall to remove everything, heartbeats included", e.everythingGone)
}

// TestAgentMayRenewOnlyItsOwnHeartbeat: with the Role the operator creates and the admission
// policy, an agent (impersonated: its ServiceAccount and node claim) creates and renews its own
// node's heartbeat Lease, and may neither write another node's, nor any other Lease of the
// namespace, nor delete its own.
func TestAgentMayRenewOnlyItsOwnHeartbeat(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	names := e.installed(2)
	agentA := e.agentClient(names[0])
	lease := func(name string) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name, Labels: map[string]string{v1alpha1.LabelHeartbeat: "true"}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(names[0]), RenewTime: &metav1.MicroTime{Time: time.Now()}},
		}
	}
	// RBAC and the policy load asynchronously: dry runs until both hold.
	e.eventually(30*time.Second, "agent A allowed to create its own heartbeat (dry run)", func() error {
		return agentA.Create(e.ctx(), lease(v1alpha1.HeartbeatLeaseName(names[0])), client.DryRunAll)
	})
	for _, other := range []string{v1alpha1.HeartbeatLeaseName(names[1]), "ovsmesh-operator-leader"} {
		e.eventually(30*time.Second, "the policy to refuse agent A creating "+other+" (dry run)", func() error {
			err := agentA.Create(e.ctx(), lease(other), client.DryRunAll)
			if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "its own heartbeat Lease") {
				return fmt.Errorf("creating %s: %v, want the policy's refusal", other, err)
			}
			return nil
		})
	}
	own := lease(v1alpha1.HeartbeatLeaseName(names[0]))
	if err := agentA.Create(e.ctx(), own); err != nil {
		t.Fatalf("agent A creating its own heartbeat: %v", err)
	}
	own.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	if err := agentA.Update(e.ctx(), own); err != nil {
		t.Errorf("agent A renewing its own heartbeat: %v", err)
	}
	if err := agentA.Delete(e.ctx(), own); !apierrors.IsForbidden(err) {
		t.Errorf("agent A deleting its heartbeat: %v, want Forbidden", err)
	}
	// Agent B cannot renew A's.
	if err := e.agentClient(names[1]).Update(e.ctx(), own); err == nil || !strings.Contains(err.Error(), "its own heartbeat Lease") {
		t.Errorf("agent B renewing A's heartbeat: %v, want the policy's refusal", err)
	}
}
