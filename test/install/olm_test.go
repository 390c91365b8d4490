package install

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/internal/testbed"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// operatorGroup is the name of the global OperatorGroup the test pretends to install into.
const operatorGroup = "global-operators"

// TestOLMBundleInstallPath installs bundle/ the way OLM's deployment install strategy does,
// on an API server with nothing of ovsmesh, without OLM itself (it is not available here):
//
//  1. the bundle is loaded with operator-framework/api's loader, as OLM's tooling does;
//  2. the install namespace is created from the CSV's suggested-namespace template;
//  3. the bundle's CRDs are applied and become Established;
//  4. the CSV's install strategy, rendered into the plain objects OLM creates
//     (ServiceAccount, ClusterRole/Binding, Role/Binding, Deployment with OLM's annotations)
//     is applied and accepted;
//  5. the ServiceAccount really holds every permission the CSV lists, and not more than that
//     (a SubjectAccessReview per rule and name, and for something never granted: Secrets,
//     DaemonSets, ServiceAccounts and Leases outside the install namespace, changing or
//     binding cluster-admin, escalate, and changing admission policies other than the
//     operator's own);
//  6. the operator pod is admitted in the suggested namespace, and would not be in a
//     namespace with the baseline Pod Security level, so the template's label matters;
//  7. every alm-example is accepted by the installed CRDs.
func TestOLMBundleInstallPath(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir(filepath.Join(testenv.RepoRoot(), "bundle"))
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	csv := bundle.CSV
	c := startCluster(t)
	ctx := context.Background()
	cl := c.client(t)

	ns := suggestedNamespace(t, csv)
	if err := cl.Create(ctx, ns); err != nil {
		t.Fatalf("creating the suggested namespace: %v", err)
	}
	csv.Namespace = ns.Name // OLM runs the CSV in the OperatorGroup's namespace

	var crdNames []string
	for _, crd := range bundle.V1CRDs {
		u := toUnstructured(t, crd, schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		if _, found, err := get(ctx, cl, u); err != nil || found {
			t.Fatalf("%s exists before the install (err %v)", describe(u), err)
		}
		apply(t, cl, u)
		crdNames = append(crdNames, crd.Name)
	}
	if len(crdNames) != 2 {
		t.Errorf("bundle has %d CRDs, want NetworkCluster and NodeSubnet", len(crdNames))
	}
	waitEstablished(t, c, crdNames)

	objs := olmObjects(t, csv, bundle.Objects)
	for _, u := range objs {
		apply(t, cl, u)
	}
	cl = c.client(t)
	for _, u := range objs {
		if _, found, err := get(ctx, cl, u); err != nil || !found {
			t.Errorf("%s not there after apply (err %v)", describe(u), err)
		}
	}
	t.Logf("applied %d CRDs and %d objects of the install strategy", len(crdNames), len(objs))

	strategy := csv.Spec.InstallStrategy.StrategySpec
	checked := 0
	for _, p := range strategy.ClusterPermissions {
		checked += checkRules(t, cl, ns.Name, p, "")
	}
	for _, p := range strategy.Permissions {
		checked += checkRules(t, cl, ns.Name, p, ns.Name)
	}
	if checked == 0 {
		t.Error("the CSV lists no permissions")
	}
	for _, sa := range serviceAccounts(csv) {
		if allowed(t, cl, ns.Name, sa, authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns.Name}) {
			t.Errorf("ServiceAccount %s may read Secrets, which the CSV never grants: RBAC is not what the test thinks", sa)
		}
		// The agent DaemonSet, ServiceAccount and Leases are the install namespace's only
		// (permissions, not clusterPermissions), and cluster RBAC only by the agents' name.
		for _, attrs := range []authorizationv1.ResourceAttributes{
			{Verb: "create", Group: "apps", Resource: "daemonsets", Namespace: "kube-system"},
			{Verb: "create", Resource: "serviceaccounts", Namespace: "kube-system"},
			{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "kube-controller-manager"},
			{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "cluster-admin"},
			{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "cluster-admin"},
			{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		} {
			if allowed(t, cl, ns.Name, sa, attrs) {
				t.Errorf("ServiceAccount %s may %s %s %q in %q", sa, attrs.Verb, attrs.Resource, attrs.Name, attrs.Namespace)
			}
		}
		// The operator creates its agents' admission policy; it may change or remove only
		// that one, not the cluster's other policies.
		for _, v := range []string{"update", "patch", "delete"} {
			for _, res := range []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"} {
				attrs := authorizationv1.ResourceAttributes{Verb: v, Group: "admissionregistration.k8s.io", Resource: res, Name: "someone-elses-policy"}
				if allowed(t, cl, ns.Name, sa, attrs) {
					t.Errorf("ServiceAccount %s may %s %s of other names", sa, v, res)
				}
			}
		}
	}

	baseline := &corev1.Namespace{}
	baseline.Name = "baseline-" + testbed.RunID(4)
	baseline.Labels = map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}
	if err := cl.Create(ctx, baseline); err != nil {
		t.Fatal(err)
	}
	for _, d := range strategy.DeploymentSpecs {
		if err := admitsPod(ctx, cl, ns.Name, d.Spec.Template.Spec); err != nil {
			t.Errorf("the %s pod would not be admitted in the suggested namespace %s: %v", d.Name, ns.Name, err)
		}
		err := admitsPod(ctx, cl, baseline.Name, d.Spec.Template.Spec)
		if err == nil || !strings.Contains(err.Error(), "host") {
			t.Errorf("the %s pod (hostNetwork) was admitted in a baseline namespace (err %v): Pod Security admission is not checking, or the pod changed", d.Name, err)
		} else {
			t.Logf("as expected, a baseline namespace refuses the %s pod: %v", d.Name, err)
		}
	}

	var examples []map[string]any
	if err := json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &examples); err != nil || len(examples) == 0 {
		t.Fatalf("alm-examples %q: %v", csv.Annotations["alm-examples"], err)
	}
	for _, e := range examples {
		u := &unstructured.Unstructured{Object: e}
		apply(t, cl, u)
		live, found, err := get(ctx, cl, u)
		if err != nil || !found {
			t.Errorf("alm-example %s not there after apply (err %v)", describe(u), err)
			continue
		}
		if _, ok, _ := unstructured.NestedString(live.Object, "spec", "agentImage"); u.GetKind() == "NetworkCluster" && !ok {
			t.Errorf("alm-example %s was not defaulted by the bundle CRD: %v", describe(u), live.Object["spec"])
		}
	}
}

// suggestedNamespace is the namespace the console would create for the install, from the
// CSV's operatorframework.io/suggested-namespace-template.
func suggestedNamespace(t *testing.T, csv *v1alpha1.ClusterServiceVersion) *corev1.Namespace {
	t.Helper()
	tmpl := csv.Annotations["operatorframework.io/suggested-namespace-template"]
	ns := &corev1.Namespace{}
	if err := json.Unmarshal([]byte(tmpl), ns); err != nil || ns.Name == "" {
		t.Fatalf("CSV suggested-namespace-template %q: %v", tmpl, err)
	}
	if ns.Name != csv.Annotations["operatorframework.io/suggested-namespace"] {
		t.Errorf("suggested namespace %q and template %q disagree", csv.Annotations["operatorframework.io/suggested-namespace"], ns.Name)
	}
	return ns
}

// olmObjects renders a CSV's deployment install strategy into the objects OLM creates for it
// in the CSV's namespace, following operator-lifecycle-manager (pkg/controller/registry/
// resolver/rbac.go, pkg/controller/install/deployment.go):
//   - one ServiceAccount per serviceAccountName;
//   - per permissions entry a Role and a RoleBinding to the ServiceAccount, in the namespace;
//   - per clusterPermissions entry a ClusterRole and a ClusterRoleBinding;
//     (names: "<csv>[-<sa>]-<hash>", at most 63 characters; labels olm.owner*);
//   - per deployment a Deployment with the spec as is, its label set plus olm.owner*, and the
//     CSV's annotations plus the OperatorGroup's (olm.operatorGroup, olm.operatorNamespace,
//     olm.targetNamespaces, empty for AllNamespaces) on its pod template; OLM also adds
//     OPERATOR_CONDITION_NAME to every container;
//   - every other bundle manifest, in the namespace when namespaced.
func olmObjects(t *testing.T, csv *v1alpha1.ClusterServiceVersion, extra []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	ns := csv.Namespace
	owner := map[string]string{"olm.owner": csv.Name, "olm.owner.kind": "ClusterServiceVersion", "olm.owner.namespace": ns}
	rbacGV := rbacv1.SchemeGroupVersion
	var out []*unstructured.Unstructured
	for _, sa := range serviceAccounts(csv) {
		o := &corev1.ServiceAccount{}
		o.Name, o.Namespace, o.Labels = sa, ns, owner
		out = append(out, toUnstructured(t, o, corev1.SchemeGroupVersion.WithKind("ServiceAccount")))
	}
	subject := func(sa string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}
	}
	strategy := csv.Spec.InstallStrategy.StrategySpec
	for _, p := range strategy.Permissions {
		name := olmName(csv.Name+"-"+p.ServiceAccountName, csv.Name, p)
		role := &rbacv1.Role{Rules: p.Rules}
		role.Name, role.Namespace, role.Labels = name, ns, owner
		binding := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: subject(p.ServiceAccountName)}
		binding.Name, binding.Namespace, binding.Labels = name, ns, owner
		out = append(out, toUnstructured(t, role, rbacGV.WithKind("Role")), toUnstructured(t, binding, rbacGV.WithKind("RoleBinding")))
	}
	for _, p := range strategy.ClusterPermissions {
		name := olmName(csv.Name, csv.Name+ns, p)
		role := &rbacv1.ClusterRole{Rules: p.Rules}
		role.Name, role.Labels = name, owner
		binding := &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}, Subjects: subject(p.ServiceAccountName)}
		binding.Name, binding.Labels = name, owner
		out = append(out, toUnstructured(t, role, rbacGV.WithKind("ClusterRole")), toUnstructured(t, binding, rbacGV.WithKind("ClusterRoleBinding")))
	}
	for _, d := range strategy.DeploymentSpecs {
		dep := &appsv1.Deployment{Spec: *d.Spec.DeepCopy()}
		dep.Name, dep.Namespace = d.Name, ns
		dep.Labels = map[string]string{}
		for k, v := range d.Label {
			dep.Labels[k] = v
		}
		for k, v := range owner {
			dep.Labels[k] = v
		}
		ann := map[string]string{}
		for k, v := range csv.Annotations {
			ann[k] = v
		}
		ann["olm.operatorGroup"], ann["olm.operatorNamespace"], ann["olm.targetNamespaces"] = operatorGroup, ns, ""
		for k, v := range dep.Spec.Template.Annotations {
			ann[k] = v
		}
		dep.Spec.Template.Annotations = ann
		for i := range dep.Spec.Template.Spec.Containers {
			c := &dep.Spec.Template.Spec.Containers[i]
			c.Env = append(c.Env, corev1.EnvVar{Name: "OPERATOR_CONDITION_NAME", Value: csv.Name})
		}
		out = append(out, toUnstructured(t, dep, appsv1.SchemeGroupVersion.WithKind("Deployment")))
	}
	for _, u := range extra {
		if u.GetKind() == "ClusterServiceVersion" || u.GetKind() == "CustomResourceDefinition" {
			continue
		}
		c := u.DeepCopy()
		if namespacedKinds[c.GetKind()] {
			c.SetNamespace(ns)
		}
		out = append(out, c)
	}
	return out
}

// namespacedKinds are the namespaced kinds among those a bundle may carry.
var namespacedKinds = map[string]bool{"Secret": true, "ConfigMap": true, "Service": true, "ServiceAccount": true,
	"Role": true, "RoleBinding": true, "PrometheusRule": true, "ServiceMonitor": true, "PodDisruptionBudget": true}

// olmName is OLM's generateName: base, a dash and a hash of the inputs, cut to 63 characters.
func olmName(base string, parts ...any) string {
	h := fnv.New32a()
	raw, _ := json.Marshal(parts)
	h.Write(raw)
	hash := fmt.Sprintf("%x", h.Sum32())
	if len(base)+len(hash) > 62 {
		base = base[:62-len(hash)]
	}
	return base + "-" + hash
}

// serviceAccounts are the ServiceAccounts OLM creates for a CSV.
func serviceAccounts(csv *v1alpha1.ClusterServiceVersion) []string {
	seen := map[string]bool{}
	var out []string
	s := csv.Spec.InstallStrategy.StrategySpec
	for _, p := range append(append([]v1alpha1.StrategyDeploymentPermissions{}, s.Permissions...), s.ClusterPermissions...) {
		if !seen[p.ServiceAccountName] {
			seen[p.ServiceAccountName] = true
			out = append(out, p.ServiceAccountName)
		}
	}
	return out
}

// checkRules asks the API server, for every verb on every resource of p's rules, whether the
// ServiceAccount may do it (in namespace, or cluster-wide when namespace is ""). It returns
// the number of checks made.
func checkRules(t *testing.T, cl client.Client, installNS string, p v1alpha1.StrategyDeploymentPermissions, namespace string) int {
	t.Helper()
	n := 0
	for _, r := range p.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				// A rule limited to resourceNames grants nothing without a name: ask per name.
				names := r.ResourceNames
				if len(names) == 0 {
					names = []string{""}
				}
				for _, v := range r.Verbs {
					for _, name := range names {
						n++
						attrs := authorizationv1.ResourceAttributes{Namespace: namespace, Verb: v, Group: g, Resource: resource, Subresource: sub, Name: name}
						if !allowed(t, cl, installNS, p.ServiceAccountName, attrs) {
							t.Errorf("ServiceAccount %s/%s may not %s %s %q (group %q) in %q, though the CSV grants it", installNS, p.ServiceAccountName, v, res, name, g, namespace)
						}
					}
				}
			}
		}
	}
	return n
}

func allowed(t *testing.T, cl client.Client, ns, sa string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa),
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &attrs,
	}}
	if err := cl.Create(context.Background(), sar); err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return sar.Status.Allowed
}

func toUnstructured(t *testing.T, obj any, gvk schema.GroupVersionKind) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u
}

// apply server-side applies u as OLM would (field owner "olm").
func apply(t *testing.T, cl client.Client, u *unstructured.Unstructured) {
	t.Helper()
	if err := cl.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("olm"), client.ForceOwnership); err != nil {
		t.Fatalf("applying %s: %v", describe(u), err)
	}
}
