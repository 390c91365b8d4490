package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// agentPolicyInstalled checks that the operator created the admission policy and its binding:
// server-side applied by it, owned by the NetworkCluster, the binding denying through it.
func (e *opEnv) agentPolicyInstalled() error {
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	for _, o := range []client.Object{p, b} {
		if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentPolicyName}, o); err != nil {
			return fmt.Errorf("%T: %w", o, err)
		}
		if !appliedByOperator(o) {
			return fmt.Errorf("%T %s has no server-side apply entry of %s: %+v", o, o.GetName(), FieldManager, o.GetManagedFields())
		}
		if owner := metav1.GetControllerOf(o); owner == nil || owner.Kind != "NetworkCluster" || owner.Name != v1alpha1.NetworkClusterName {
			return fmt.Errorf("%T %s: controller %+v, want the NetworkCluster", o, o.GetName(), owner)
		}
	}
	if b.Spec.PolicyName != p.Name || !slices.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
		return fmt.Errorf("binding spec %+v", b.Spec)
	}
	return nil
}

// agentPolicyGone checks that neither the policy nor its binding is left.
func (e *opEnv) agentPolicyGone() error {
	for _, o := range []client.Object{&admissionregistrationv1.ValidatingAdmissionPolicy{}, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}} {
		if err := isGone(e.c.Get(e.ctx(), client.ObjectKey{Name: AgentPolicyName}, o)); err != nil {
			return fmt.Errorf("%T %s: %w", o, AgentPolicyName, err)
		}
	}
	return nil
}

func appliedByOperator(o client.Object) bool {
	for _, m := range o.GetManagedFields() {
		if m.Manager == FieldManager && m.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// agentClient acts as the agent ServiceAccount of the operator's namespace, with the node
// claim a pod-bound token of an agent on node carries (node == "": a token without one).
func (e *opEnv) agentClient(node string) client.Client {
	e.t.Helper()
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + e.ns + ":" + AgentName,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"},
	}
	if node != "" {
		cfg.Impersonate.Extra = map[string][]string{"authentication.kubernetes.io/node-name": {node}}
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// writeReady updates a NodeSubnet's status through c (Ready=True) and returns the API error.
// With client.DryRunAll it goes through authorization and admission, the policy included,
// and stores nothing.
func (e *opEnv) writeReady(c client.Client, name string, opts ...client.SubResourceUpdateOption) error {
	s := &v1alpha1.NodeSubnet{}
	if err := c.Get(e.ctx(), client.ObjectKey{Name: name}, s); err != nil {
		return err
	}
	meta.SetStatusCondition(&s.Status.Conditions, cond(v1alpha1.ConditionReady, "True", "Applied"))
	s.Status.TunnelCount++
	return c.Status().Update(e.ctx(), s, opts...)
}

// TestAdmissionPolicyAgentOnlyWritesOwnNodeSubnet: the operator creates the admission policy
// with the agents (nothing else installs it, on any install path), and it holds: the test
// acts as agents through impersonation (user, groups and the node claim of a pod-bound
// ServiceAccount token), with the agent RBAC the operator creates. Then the policy is
// tampered with, and the operator puts it back.
func TestAdmissionPolicyAgentOnlyWritesOwnNodeSubnet(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	if err := e.agentPolicyGone(); err != nil {
		t.Fatalf("an agent policy exists before the NetworkCluster: %v", err)
	}
	nodeA, nodeB := e.nodeName(0)+"-a", e.nodeName(1)+"-b"
	e.createCluster(nil)
	e.mustNode(nodeA, "192.168.9.10", nil)
	e.mustNode(nodeB, "192.168.9.11", nil)
	e.waitSubnets(30*time.Second, nodeA, nodeB)
	e.eventually(20*time.Second, "the operator's agent policy", e.agentPolicyInstalled)

	agentA := e.agentClient(nodeA)
	// The operator's RBAC and the policy both take effect asynchronously (the API server
	// loads them from its informers): wait until agent A can write its own status, and until
	// writing B's is refused by the policy, trying the latter as dry runs (admission runs,
	// nothing is stored) so that B's status stays untouched while the policy loads.
	e.eventually(30*time.Second, "agent A to write its own NodeSubnet status", func() error {
		return e.writeReady(agentA, nodeA)
	})
	e.eventually(30*time.Second, "the policy to refuse agent A writing node B's status (dry run)", func() error {
		return refusedByPolicy(e.writeReady(agentA, nodeB, client.DryRunAll))
	})
	denied := e.writeReady(agentA, nodeB)
	if err := refusedByPolicy(denied); err != nil {
		t.Fatalf("agent A writing node B's status for real: %v", err)
	}
	if !apierrors.IsForbidden(denied) {
		t.Errorf("denial is not Forbidden: %v", denied)
	}
	t.Logf("agent on %s writing %s's status: %v", nodeA, nodeB, denied)
	if s, _ := e.subnet(nodeB); meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady) != nil {
		t.Errorf("node B's status was changed: %+v", s.Status)
	}

	// Agent B may write its own; A still may.
	if err := e.writeReady(e.agentClient(nodeB), nodeB); err != nil {
		t.Errorf("agent B writing its own status: %v", err)
	}
	if err := e.writeReady(agentA, nodeA); err != nil {
		t.Errorf("agent A writing its own status again: %v", err)
	}
	// A credential without a node claim is refused.
	if err := e.writeReady(e.agentClient(""), nodeA); err == nil || !strings.Contains(err.Error(), "names no node") {
		t.Errorf("agent without a node claim: %v, want the policy's refusal", err)
	}
	// The spec is out of reach (RBAC: the agent has no update on nodesubnets).
	s, err := e.subnet(nodeA)
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.NodeIP = "192.168.9.99"
	if err := agentA.Update(e.ctx(), s); !apierrors.IsForbidden(err) {
		t.Errorf("agent A updating its NodeSubnet spec: %v, want Forbidden", err)
	}
	// Other identities are not affected by the policy: the operator (admin here) writes B's status.
	if err := e.writeReady(e.c, nodeB); err != nil {
		t.Errorf("admin writing node B's status: %v", err)
	}

	// Tampering, each of which alone would switch the policy off. Server-side apply would
	// keep another manager's additions, so the operator re-creates the object:
	// 1. the policy gets an exclusion for NodeSubnet status;
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentPolicyName}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.MatchConstraints.ExcludeResourceRules = []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{v1alpha1.GroupVersion.Group}, APIVersions: []string{"*"}, Resources: []string{"nodesubnets/status"}},
		},
	}}
	if err := e.c.Update(e.ctx(), p); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "the policy re-created without the exclusion", func() error {
		if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentPolicyName}, p); err != nil {
			return err
		}
		if len(p.Spec.MatchConstraints.ExcludeResourceRules) != 0 {
			return fmt.Errorf("exclusions %+v", p.Spec.MatchConstraints.ExcludeResourceRules)
		}
		return e.agentPolicyInstalled()
	})
	// 2. the binding gets Warn next to Deny (invalid together, so merging it with the
	// operator's Deny fails), then is deleted.
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentPolicyName}, b); err != nil {
		t.Fatal(err)
	}
	uid := b.UID
	b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}
	if err := e.c.Update(e.ctx(), b); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "the binding re-created with Deny", func() error {
		if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentPolicyName}, b); err != nil || b.UID == uid {
			return fmt.Errorf("still the edited binding (err %v)", err)
		}
		return e.agentPolicyInstalled()
	})
	if _, err := e.findEvent(v1alpha1.NetworkClusterName, ReasonAgentPolicyReset); err != nil {
		t.Errorf("no event about the reset: %v", err)
	}
	uid = b.UID
	if err := e.c.Delete(e.ctx(), b); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "the binding re-created", func() error {
		if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentPolicyName}, b); err != nil || b.UID == uid {
			return fmt.Errorf("not re-created yet (err %v)", err)
		}
		return e.agentPolicyInstalled()
	})
	e.eventually(30*time.Second, "the re-created binding to refuse agent A writing node B's status (dry run)", func() error {
		return refusedByPolicy(e.writeReady(agentA, nodeB, client.DryRunAll))
	})
}

// refusedByPolicy returns nil when err is the policy's refusal of writing another node's status.
func refusedByPolicy(err error) error {
	switch {
	case err == nil:
		return errors.New("admitted")
	case !strings.Contains(err.Error(), "own node"):
		return fmt.Errorf("refused, but not by the policy: %v", err)
	}
	return nil
}
