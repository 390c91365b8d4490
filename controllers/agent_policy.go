package controllers

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// AgentPolicyName names both the ValidatingAdmissionPolicy that keeps each agent to its own
// node's NodeSubnet status and its binding. The operator's RBAC may update and delete only
// objects of this name (the resourceNames in rbac.go repeat it: markers cannot refer to a
// constant). A policy of this name that another manager co-owns (an earlier kubectl install)
// is taken over, re-created once: see applyExclusively.
const AgentPolicyName = "ovsmesh-nodesubnet-agent-restriction"

// agentPolicyYAML is the policy and its binding: the one source of truth. The operator
// creates it at run time because an OLM bundle cannot carry admission policies, and it is
// not in config/ as well: a kubectl-applied copy would be a second policy (kustomize prefixes
// its name) doing the same work, left behind when uninstall removes the operator's.
//
//go:embed policy/nodesubnet_agent_restriction.yaml
var agentPolicyYAML []byte

// agentPolicy returns the embedded policy and binding as apply configurations, with the
// operator's labels and the NetworkCluster as controller owner (the watch that restores them
// when edited or deleted, and the garbage collector's fallback on uninstall). It decodes the
// YAML on every call, so callers may modify what it returns.
func agentPolicy(nc *v1alpha1.NetworkCluster) (*admissionregistrationv1ac.ValidatingAdmissionPolicyApplyConfiguration, *admissionregistrationv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration, error) {
	policy, binding, err := parseAgentPolicy(agentPolicyYAML)
	if err != nil {
		return nil, nil, err
	}
	policy.WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc))
	binding.WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc))
	return policy, binding, nil
}

// parseAgentPolicy decodes exactly one ValidatingAdmissionPolicy and one binding of it, both
// named AgentPolicyName, refusing unknown fields (a typo would otherwise be dropped silently
// and weaken the policy).
func parseAgentPolicy(raw []byte) (*admissionregistrationv1ac.ValidatingAdmissionPolicyApplyConfiguration, *admissionregistrationv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration, error) {
	var policy *admissionregistrationv1ac.ValidatingAdmissionPolicyApplyConfiguration
	var binding *admissionregistrationv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		var tm struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, nil, err
		}
		if tm.Kind == "" {
			continue // comments only
		}
		if tm.APIVersion != admissionregistrationv1.SchemeGroupVersion.String() {
			return nil, nil, fmt.Errorf("agent policy: %s has apiVersion %q, want %s", tm.Kind, tm.APIVersion, admissionregistrationv1.SchemeGroupVersion)
		}
		switch {
		case tm.Kind == "ValidatingAdmissionPolicy" && policy == nil:
			policy = &admissionregistrationv1ac.ValidatingAdmissionPolicyApplyConfiguration{}
			err = yaml.UnmarshalStrict(doc, policy)
		case tm.Kind == "ValidatingAdmissionPolicyBinding" && binding == nil:
			binding = &admissionregistrationv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration{}
			err = yaml.UnmarshalStrict(doc, binding)
		default:
			err = fmt.Errorf("unexpected (or second) %s", tm.Kind)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("agent policy: %w", err)
		}
	}
	switch {
	case policy == nil || binding == nil:
		return nil, nil, errors.New("agent policy: want a ValidatingAdmissionPolicy and its binding")
	case policy.Name == nil || *policy.Name != AgentPolicyName || binding.Name == nil || *binding.Name != AgentPolicyName:
		return nil, nil, fmt.Errorf("agent policy: both objects must be named %s (the operator's RBAC is limited to it)", AgentPolicyName)
	case binding.Spec == nil || binding.Spec.PolicyName == nil || *binding.Spec.PolicyName != AgentPolicyName:
		return nil, nil, fmt.Errorf("agent policy: the binding must bind %s", AgentPolicyName)
	}
	return policy, binding, nil
}

// ReasonAgentPolicyReset is the event reason when the operator re-creates the agent policy
// because someone else had changed its spec.
const ReasonAgentPolicyReset = "AgentPolicyReset"

// foreignSpecManagers returns the field managers other than the operator that own anything
// in the spec of an object (status, written by the API server, and metadata do not count).
//
// Server-side apply with force ownership takes over only the fields the operator sets: an
// exclusion rule, a matchResources selector or a `Warn` next to `Deny` in validationActions
// (a set) added by someone else would stay, each enough to switch the policy off. For the
// policy the spec must be exactly the operator's, so such an owner means: re-create it.
func foreignSpecManagers(entries []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, m := range entries {
		if m.Manager == FieldManager || m.Subresource != "" || m.FieldsV1 == nil {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(m.FieldsV1.Raw, &fields); err != nil {
			out = append(out, m.Manager) // unreadable: assume the worst
			continue
		}
		if _, ok := fields["f:spec"]; ok && !slices.Contains(out, m.Manager) {
			out = append(out, m.Manager)
		}
	}
	return out
}

// applyExclusively server-side applies one agent policy object and makes sure the operator
// alone defines its spec: when another manager owns part of it (or merging with that part is
// invalid, as Warn with Deny is), it deletes the object and applies it afresh. That leaves a
// moment without it, but only after someone else changed it; in the steady state (and after a
// restart) the apply is a no-op, no write.
func (r *NetworkClusterReconciler) applyExclusively(ctx context.Context, nc *v1alpha1.NetworkCluster, ac runtime.ApplyConfiguration) error {
	desired, err := toUnstructured(ac)
	if err != nil {
		return err
	}
	live := desired.DeepCopy()
	applyErr := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(live), client.FieldOwner(FieldManager), client.ForceOwnership)
	switch {
	case applyErr == nil:
	case apierrors.IsInvalid(applyErr):
		// Invalid after merging with what is there, or invalid in itself: only the first is
		// reason to delete what is there.
		live = desired.DeepCopy()
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
			return errors.Join(applyErr, client.IgnoreNotFound(err))
		}
	default:
		return applyErr
	}
	others := foreignSpecManagers(live.GetManagedFields())
	if len(others) == 0 {
		return applyErr
	}
	ctrl.LoggerFrom(ctx).Info("agent admission policy changed by another field manager; re-creating it",
		"kind", desired.GetKind(), "name", desired.GetName(), "managers", others, "applyError", applyErr)
	r.Recorder.Eventf(nc, nil, corev1.EventTypeWarning, ReasonAgentPolicyReset, "Reconcile",
		"%s %s was changed by %s; re-creating it as the operator defines it", desired.GetKind(), desired.GetName(), nameList(others))
	uid := live.GetUID()
	if err := r.Client.Delete(ctx, live, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	return r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(desired.DeepCopy()), client.FieldOwner(FieldManager), client.ForceOwnership)
}

func toUnstructured(ac runtime.ApplyConfiguration) (*unstructured.Unstructured, error) {
	raw, err := json.Marshal(ac)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	return u, json.Unmarshal(raw, &u.Object)
}
