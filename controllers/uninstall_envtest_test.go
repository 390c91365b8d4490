package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// installed brings up a cluster with n nodes and the agent objects (the admission policy
// included), and returns the node names.
func (e *opEnv) installed(n int) []string {
	e.t.Helper()
	e.createCluster(nil)
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, e.nodeName(i))
		e.mustNode(names[i], fmt.Sprintf("192.168.8.%d", 10+i), nil)
	}
	e.waitSubnets(30*time.Second, names...)
	e.eventually(20*time.Second, "the agent DaemonSet", func() error { _, err := e.daemonSet(); return err })
	e.eventually(20*time.Second, "the agent admission policy", e.agentPolicyInstalled)
	return names
}

// everythingGone checks that uninstall left nothing: agent objects and their admission policy,
// NodeSubnets, subnet blocks and finally the NetworkCluster itself.
func (e *opEnv) everythingGone() error {
	if _, err := e.daemonSet(); isGone(err) != nil {
		return fmt.Errorf("DaemonSet: %w", isGone(err))
	}
	for _, o := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}} {
		ns := ""
		if _, ok := o.(*corev1.ServiceAccount); ok {
			ns = e.ns
		}
		if err := isGone(e.c.Get(e.ctx(), client.ObjectKey{Namespace: ns, Name: AgentName}, o)); err != nil {
			return fmt.Errorf("%T: %w", o, err)
		}
	}
	if err := e.agentPolicyGone(); err != nil {
		return err
	}
	if n := len(e.subnets()); n != 0 {
		return fmt.Errorf("%d NodeSubnets left", n)
	}
	if b, other := e.blocks(defaultPool); len(b)+len(other) != 0 {
		return fmt.Errorf("%d subnet blocks left", len(b)+len(other))
	}
	var leases coordinationv1.LeaseList
	if err := e.c.List(e.ctx(), &leases, client.InNamespace(e.ns), client.MatchingLabels{v1alpha1.LabelHeartbeat: "true"}); err != nil || len(leases.Items) != 0 {
		return fmt.Errorf("%d heartbeat Leases left (%v)", len(leases.Items), err)
	}
	for _, o := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		if err := isGone(e.c.Get(e.ctx(), client.ObjectKey{Namespace: e.ns, Name: AgentName}, o)); err != nil {
			return fmt.Errorf("%T: %w", o, err)
		}
	}
	return isGone(e.c.Get(e.ctx(), clusterKey, &v1alpha1.NetworkCluster{}))
}

func TestUninstallWaitsForAgentsThenRemovesEverything(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{CleanupTimeout: time.Minute})
	names := e.installed(3)
	if err := e.c.Delete(e.ctx(), e.cluster()); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "teardown requested on every NodeSubnet", func() error {
		for _, s := range e.subnets() {
			if !s.Spec.Teardown {
				return fmt.Errorf("%s: teardown not set", s.Name)
			}
		}
		return nil
	})
	e.eventually(20*time.Second, "Progressing=Uninstalling", func() error {
		c := meta.FindStatusCondition(e.cluster().Status.Conditions, v1alpha1.ConditionProgressing)
		if c == nil || c.Reason != ReasonUninstalling || !strings.Contains(c.Message, names[0]) {
			return fmt.Errorf("Progressing %+v", c)
		}
		return nil
	})

	// Two agents report clean, as agents (their RBAC, under the admission policy): the
	// operator keeps waiting for the third, agents, their RBAC and the policy stay.
	for _, n := range names[:2] {
		e.reportCleanedUpAsAgent(n)
	}
	time.Sleep(2 * time.Second)
	if _, err := e.daemonSet(); err != nil {
		t.Fatalf("the agents were removed before every node reported clean: %v", err)
	}
	if err := e.agentPolicyInstalled(); err != nil {
		t.Fatalf("the agent policy was changed or removed before every node reported clean: %v", err)
	}
	if n := len(e.subnets()); n != 3 {
		t.Fatalf("%d NodeSubnets while waiting, want 3", n)
	}
	// An agent still may not report for another node during uninstall.
	if err := e.writeCleanedUp(e.agentClient(names[0]), names[2]); err == nil || !strings.Contains(err.Error(), "own node") {
		t.Errorf("agent on %s reporting CleanedUp for %s: %v, want the policy's refusal", names[0], names[2], err)
	}
	e.reportCleanedUpAsAgent(names[2])
	e.eventually(30*time.Second, "uninstall to finish", e.everythingGone)
	if _, err := e.findEvent(v1alpha1.NetworkClusterName, ReasonCleanupTimedOut); err == nil {
		t.Errorf("a timeout was reported although every agent cleaned up")
	}
	e.eventually(10*time.Second, "CleanedUp event", func() error {
		_, err := e.findEvent(v1alpha1.NetworkClusterName, ReasonCleanedUp)
		return err
	})
	// Nodes stay; nothing re-creates NodeSubnets without a NetworkCluster.
	time.Sleep(time.Second)
	if n := len(e.subnets()); n != 0 {
		t.Errorf("%d NodeSubnets re-created after uninstall", n)
	}
}

// writeCleanedUp sets CleanedUp=True on a NodeSubnet's status through c.
func (e *opEnv) writeCleanedUp(c client.Client, name string) error {
	s := &v1alpha1.NodeSubnet{}
	if err := c.Get(e.ctx(), client.ObjectKey{Name: name}, s); err != nil {
		return err
	}
	meta.SetStatusCondition(&s.Status.Conditions, cond(v1alpha1.ConditionCleanedUp, "True", "Removed"))
	return c.Status().Update(e.ctx(), s)
}

// reportCleanedUpAsAgent reports CleanedUp for a node as its agent does: the agent
// ServiceAccount with the node claim of its pod-bound token.
func (e *opEnv) reportCleanedUpAsAgent(node string) {
	e.t.Helper()
	agent := e.agentClient(node)
	e.eventually(10*time.Second, "CleanedUp written by the agent on "+node, func() error {
		return e.writeCleanedUp(agent, node)
	})
}

func TestUninstallTimeoutProceeds(t *testing.T) {
	e := newOpEnv(t)
	const timeout = 5 * time.Second
	e.startManager(Options{CleanupTimeout: timeout})
	names := e.installed(2)
	// Only one agent answers; the other node is dead.
	if err := e.c.Delete(e.ctx(), e.cluster()); err != nil {
		t.Fatal(err)
	}
	deadline := e.cluster().DeletionTimestamp.Add(timeout)
	e.eventually(10*time.Second, "teardown on "+names[0], func() error {
		s, err := e.subnet(names[0])
		if err != nil || !s.Spec.Teardown {
			return fmt.Errorf("teardown not set (%v)", err)
		}
		return nil
	})
	e.setAgentStatus(names[0], func(st *v1alpha1.NodeSubnetStatus) {
		meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionCleanedUp, "True", "Removed"))
	})
	// Until the deadline (deletionTimestamp + timeout) the operator waits for the silent one.
	time.Sleep(time.Until(deadline.Add(-1500 * time.Millisecond)))
	if _, err := e.daemonSet(); err != nil {
		t.Fatalf("agents removed before the cleanup timeout: %v", err)
	}
	if n := len(e.subnets()); n != 2 {
		t.Fatalf("%d NodeSubnets before the cleanup timeout, want 2", n)
	}
	e.eventually(30*time.Second, "uninstall to finish despite the silent agent", e.everythingGone)
	e.eventually(10*time.Second, "CleanupTimedOut event", func() error {
		ev, err := e.findEvent(v1alpha1.NetworkClusterName, ReasonCleanupTimedOut)
		if err != nil {
			return err
		}
		if !strings.Contains(ev.Note, names[1]) || strings.Contains(ev.Note, names[0]) {
			return fmt.Errorf("event %q should name %s only", ev.Note, names[1])
		}
		return nil
	})
}
