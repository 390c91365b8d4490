package main

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// objects is the rendered config/manifests sorted by what the bundle does with each object.
type objects struct {
	csv         *unstructured.Unstructured
	crds        []*unstructured.Unstructured
	deployments []*unstructured.Unstructured
	namespaces  []*unstructured.Unstructured
	rbac        []*unstructured.Unstructured // ServiceAccount, Role, ClusterRole and their bindings
	scorecard   *unstructured.Unstructured
	rest        []*unstructured.Unstructured // samples, extra manifests, or objects OLM cannot carry
}

var (
	csvGK       = schema.GroupKind{Group: "operators.coreos.com", Kind: "ClusterServiceVersion"}
	crdGK       = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
	deployGK    = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	namespaceGK = schema.GroupKind{Kind: "Namespace"}
	scorecardGK = schema.GroupKind{Group: "scorecard.operatorframework.io", Kind: "Configuration"}
	rbacKinds   = map[schema.GroupKind]bool{
		{Kind: "ServiceAccount"}:                                         true,
		{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               true,
		{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        true,
		{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        true,
		{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	}
)

func gk(u *unstructured.Unstructured) schema.GroupKind { return u.GroupVersionKind().GroupKind() }

// key names an object in messages: Kind/namespace/name.
func key(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return fmt.Sprintf("%s/%s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
	}
	return fmt.Sprintf("%s/%s", u.GetKind(), u.GetName())
}

// classify sorts objs into an objects value. Every list is sorted by key so that the output
// does not depend on kustomize's order.
func classify(objs []*unstructured.Unstructured) (*objects, error) {
	o := &objects{}
	for _, u := range objs {
		switch g := gk(u); {
		case g == csvGK:
			if o.csv != nil {
				return nil, fmt.Errorf("two ClusterServiceVersions in config/manifests: %s and %s", o.csv.GetName(), u.GetName())
			}
			o.csv = u
		case g == crdGK:
			o.crds = append(o.crds, u)
		case g == deployGK:
			o.deployments = append(o.deployments, u)
		case g == namespaceGK:
			o.namespaces = append(o.namespaces, u)
		case g == scorecardGK:
			if o.scorecard != nil {
				return nil, fmt.Errorf("two scorecard Configurations in config/manifests")
			}
			o.scorecard = u
		case rbacKinds[g]:
			o.rbac = append(o.rbac, u)
		default:
			o.rest = append(o.rest, u)
		}
	}
	if o.csv == nil {
		return nil, fmt.Errorf("config/manifests renders no ClusterServiceVersion (bases/<package>.clusterserviceversion.yaml)")
	}
	if len(o.deployments) == 0 {
		return nil, fmt.Errorf("config/manifests renders no Deployment: nothing to install")
	}
	for _, l := range [][]*unstructured.Unstructured{o.crds, o.deployments, o.namespaces, o.rbac, o.rest} {
		sortObjects(l)
	}
	return o, nil
}

func sortObjects(l []*unstructured.Unstructured) {
	sort.SliceStable(l, func(i, j int) bool { return key(l[i]) < key(l[j]) })
}

// olmCarries lists the kinds a registry+v1 bundle may hold besides the CSV and CRDs, and
// whether they are namespaced (OLM puts those in the install namespace). This is OLM's own
// list (operator-registry pkg/lib/bundle/supported_resources.go); anything else in a bundle
// fails to install.
var olmCarries = map[string]bool{
	"Secret": true, "ConfigMap": true, "Service": true, "ServiceAccount": true,
	"Role": true, "RoleBinding": true, "ClusterRole": false, "ClusterRoleBinding": false,
	"PrometheusRule": true, "ServiceMonitor": true, "PodDisruptionBudget": true,
	"PriorityClass": false, "VerticalPodAutoscaler": false, "ConsoleYAMLSample": false,
}

// leftOut are kinds config/default may hold that a bundle cannot: they are left out of the
// bundle with a note printed by `make bundle`, and the bundle README explains the consequence.
// Any other kind OLM cannot carry is an error, so that nobody loses an object silently.
var leftOut = map[string]string{
	"ValidatingAdmissionPolicy":        "OLM registry+v1 bundles cannot carry admission policies; an OLM install has no such policy unless the operator creates it at run time",
	"ValidatingAdmissionPolicyBinding": "OLM registry+v1 bundles cannot carry admission policies; an OLM install has no such policy unless the operator creates it at run time",
	"MutatingAdmissionPolicy":          "OLM registry+v1 bundles cannot carry admission policies; an OLM install has no such policy unless the operator creates it at run time",
	"MutatingAdmissionPolicyBinding":   "OLM registry+v1 bundles cannot carry admission policies; an OLM install has no such policy unless the operator creates it at run time",
}

// manifestFileName is operator-sdk's name for an extra bundle manifest:
// <name>_<group>_<version>_<kind>.yaml, the core group written as just the version.
func manifestFileName(u *unstructured.Unstructured) string {
	gv := u.GroupVersionKind()
	parts := []string{u.GetName()}
	if gv.Group != "" {
		parts = append(parts, gv.Group)
	}
	parts = append(parts, gv.Version, strings.ToLower(gv.Kind))
	return strings.Join(parts, "_") + ".yaml"
}
