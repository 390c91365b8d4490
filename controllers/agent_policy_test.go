package controllers

import (
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestAgentPolicyEmbedded: the embedded policy decodes, names the agent ServiceAccount the
// operator creates, denies, and carries the operator's labels and owner.
func TestAgentPolicyEmbedded(t *testing.T) {
	nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName, UID: "u1"}}
	policy, binding, err := agentPolicy(nc)
	if err != nil {
		t.Fatal(err)
	}
	if *policy.Kind != "ValidatingAdmissionPolicy" || *binding.Kind != "ValidatingAdmissionPolicyBinding" {
		t.Errorf("kinds %s, %s", *policy.Kind, *binding.Kind)
	}
	if *policy.Spec.FailurePolicy != "Fail" {
		t.Errorf("failurePolicy %s, want Fail (a broken policy must not admit agents)", *policy.Spec.FailurePolicy)
	}
	if len(policy.Spec.MatchConditions) == 0 || !strings.Contains(*policy.Spec.MatchConditions[0].Expression, "':"+AgentName+"'") {
		t.Errorf("the policy does not match the agent ServiceAccount %s: %+v", AgentName, policy.Spec.MatchConditions)
	}
	if !slices.Equal(binding.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
		t.Errorf("binding validationActions %v, want [Deny]", binding.Spec.ValidationActions)
	}
	for kind, m := range map[string]*metav1ac.ObjectMetaApplyConfiguration{
		"policy": policy.ObjectMetaApplyConfiguration, "binding": binding.ObjectMetaApplyConfiguration,
	} {
		if m.Labels[LabelManagedBy] != FieldManager {
			t.Errorf("%s labels %v, want managed-by %s (the operator's cache sees only those)", kind, m.Labels, FieldManager)
		}
		if len(m.OwnerReferences) != 1 || *m.OwnerReferences[0].UID != nc.UID || !*m.OwnerReferences[0].Controller {
			t.Errorf("%s owners %+v, want the NetworkCluster as controller", kind, m.OwnerReferences)
		}
	}
	// Every call decodes afresh: what one pass changes does not leak into the next.
	policy.WithLabels(map[string]string{"x": "y"})
	again, _, _ := agentPolicy(nc)
	if _, ok := again.Labels["x"]; ok {
		t.Error("agentPolicy shares state between calls")
	}
}

func TestParseAgentPolicyRefuses(t *testing.T) {
	good := string(agentPolicyYAML)
	for name, raw := range map[string]string{
		"unknown field":    strings.Replace(good, "failurePolicy: Fail", "failurePolicy: Fail\n  failurPolicy: Ignore", 1),
		"other name":       strings.Replace(good, "name: "+AgentPolicyName+"\n", "name: other\n", 1),
		"binds another":    strings.Replace(good, "policyName: "+AgentPolicyName, "policyName: other", 1),
		"no binding":       good[:strings.Index(good, "\n---")],
		"two policies":     good + "\n---\n" + good[strings.Index(good, "apiVersion:"):strings.Index(good, "\n---")],
		"other apiVersion": strings.Replace(good, "admissionregistration.k8s.io/v1\n", "admissionregistration.k8s.io/v1beta1\n", 1),
	} {
		if raw == good {
			t.Fatalf("%s: the case changed nothing", name)
		}
		if _, _, err := parseAgentPolicy([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestOperatorRoleLimitsPolicyWritesToItsOwn: the generated role may create, read, change or
// delete only the operator's own policy (resourceNames = AgentPolicyName), never other
// admission policies.
func TestOperatorRoleLimitsPolicyWritesToItsOwn(t *testing.T) {
	role, _ := generatedRBAC(t)
	found := map[string]bool{}
	for _, r := range role.Rules {
		if !slices.Contains(r.APIGroups, "admissionregistration.k8s.io") {
			continue
		}
		for _, verb := range r.Verbs {
			switch verb {
			case "create", "update", "patch", "delete", "get", "list", "watch", "*":
				if !slices.Equal(r.ResourceNames, []string{AgentPolicyName}) {
					t.Errorf("rule %+v: %s on admission policies not limited to %s", r, verb, AgentPolicyName)
				}
				for _, res := range r.Resources {
					found[res+"/"+verb] = true
				}
			}
		}
	}
	for _, res := range []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"} {
		for _, verb := range []string{"create", "patch", "delete", "get", "list", "watch"} {
			if !found[res+"/"+verb] {
				t.Errorf("the role lacks %s on %s %s (server-side apply, uninstall, cache)", verb, res, AgentPolicyName)
			}
		}
	}
}

func TestForeignSpecManagers(t *testing.T) {
	entry := func(manager, subresource, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Subresource: subresource, FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	got := foreignSpecManagers([]metav1.ManagedFieldsEntry{
		entry(FieldManager, "", `{"f:spec":{"f:failurePolicy":{}}}`),
		entry("kube-apiserver", "status", `{"f:status":{"f:typeChecking":{}}}`),
		entry("labeller", "", `{"f:metadata":{"f:labels":{"f:team":{}}}}`),
		entry("kubectl-edit", "", `{"f:spec":{"f:validationActions":{}}}`),
		entry("kubectl-edit", "", `{"f:spec":{"f:matchConstraints":{}}}`),
		entry("broken", "", `not json`),
	})
	if !slices.Equal(got, []string{"kubectl-edit", "broken"}) {
		t.Errorf("got %v, want [kubectl-edit broken]", got)
	}
	if got := foreignSpecManagers([]metav1.ManagedFieldsEntry{entry(FieldManager, "", `{"f:spec":{}}`)}); len(got) != 0 {
		t.Errorf("the operator alone: got %v", got)
	}
}
