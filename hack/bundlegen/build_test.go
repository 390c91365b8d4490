package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	js, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	return u
}

func rule(group, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
}

func ruleYAML(r rbacv1.PolicyRule) string {
	js, _ := json.Marshal([]rbacv1.PolicyRule{r})
	return string(js)
}

func TestInstallPermissions(t *testing.T) {
	a, b, c := rule("apps", "daemonsets", "create"), rule("coordination.k8s.io", "leases", "get"), rule("", "configmaps", "list")
	objs := []*unstructured.Unstructured{
		obj(t, `{apiVersion: v1, kind: ServiceAccount, metadata: {name: op, namespace: sys}}`),
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: op-role}, rules: `+ruleYAML(a)+`}`),
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: op-rb},
		  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op-role},
		  subjects: [{kind: ServiceAccount, name: op, namespace: sys}]}`),
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: Role, metadata: {name: le, namespace: sys}, rules: `+ruleYAML(b)+`}`),
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: le-rb, namespace: sys},
		  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: le},
		  subjects: [{kind: ServiceAccount, name: op, namespace: sys}]}`),
		// A ClusterRole granted only inside the install namespace: namespaced permissions.
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: ns-role}, rules: `+ruleYAML(c)+`}`),
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: cr-in-ns, namespace: sys},
		  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ns-role},
		  subjects: [{kind: ServiceAccount, name: op, namespace: sys}]}`),
		// RBAC for users, not for the operator: stays a plain bundle manifest.
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: viewer}, rules: `+ruleYAML(c)+`}`),
		obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: viewer-rb},
		  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: viewer},
		  subjects: [{kind: User, name: alice}]}`),
	}
	got, err := installPermissions(objs, "sys", map[string]bool{"op": true})
	if err != nil {
		t.Fatal(err)
	}
	wantCluster := []v1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: "op", Rules: []rbacv1.PolicyRule{a}}}
	wantNS := []v1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: "op", Rules: []rbacv1.PolicyRule{c, b}}} // binding-name order
	if !reflect.DeepEqual(got.clusterPermissions, wantCluster) {
		t.Errorf("clusterPermissions = %+v, want %+v", got.clusterPermissions, wantCluster)
	}
	if !reflect.DeepEqual(got.permissions, wantNS) {
		t.Errorf("permissions = %+v, want %+v", got.permissions, wantNS)
	}
	var rest []string
	for _, u := range got.rest {
		rest = append(rest, key(u))
	}
	if want := []string{"ClusterRole/viewer", "ClusterRoleBinding/viewer-rb"}; !reflect.DeepEqual(rest, want) {
		t.Errorf("left as bundle manifests: %v, want %v (the operator's SA, roles and bindings are OLM's to create)", rest, want)
	}
}

func TestInstallPermissionsRefusesWhatOLMCannotExpress(t *testing.T) {
	role := obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: r}, rules: []}`)
	for name, tc := range map[string]struct {
		objs []*unstructured.Unstructured
		want string
	}{
		"binding shared with a user": {[]*unstructured.Unstructured{role, obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding,
			metadata: {name: b}, roleRef: {kind: ClusterRole, name: r},
			subjects: [{kind: ServiceAccount, name: op, namespace: sys}, {kind: User, name: alice}]}`)}, "together with other subjects"},
		"role not in config": {[]*unstructured.Unstructured{obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding,
			metadata: {name: b}, roleRef: {kind: ClusterRole, name: cluster-admin},
			subjects: [{kind: ServiceAccount, name: op, namespace: sys}]}`)}, "does not define"},
		"rights in another namespace": {[]*unstructured.Unstructured{role, obj(t, `{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding,
			metadata: {name: b, namespace: kube-system}, roleRef: {kind: ClusterRole, name: r},
			subjects: [{kind: ServiceAccount, name: op, namespace: sys}]}`)}, "only grants permissions in the install namespace"},
		"service account with no rights": {nil, "no Role or ClusterRole in config/ is bound to it"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := installPermissions(tc.objs, "sys", map[string]bool{"op": true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestDisplayNames(t *testing.T) {
	for in, want := range map[string]string{
		"NodeSubnet": "Node Subnet", "NetworkCluster": "Network Cluster", "clusterCIDR": "Cluster CIDR",
		"nodeIP": "Node IP", "vxlanPort": "Vxlan Port", "mtu": "Mtu", "CIDRBlock": "CIDR Block",
	} {
		if got := words(in); got != want {
			t.Errorf("words(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"observedGeneration": "Observed generation", "clusterCIDR": "Cluster CIDR", "teardown": "Teardown",
	} {
		if got := fieldName(in); got != want {
			t.Errorf("fieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// renderConfig renders the real config/manifests, the input the other tests vary.
func renderConfig(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(DefaultInputs(repoRoot(t)).ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

var testOpts = Options{Channels: []string{"alpha"}, DefaultChannel: "alpha", BundleDir: "bundle"}

func TestBuildHandlesEveryKindInConfig(t *testing.T) {
	policy := obj(t, `{apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingAdmissionPolicy, metadata: {name: ovsmesh-p}}`)
	service := obj(t, `{apiVersion: v1, kind: Service, metadata: {name: ovsmesh-metrics, namespace: ovsmesh-system}, spec: {ports: [{port: 8443}]}}`)
	b, err := Build(append(renderConfig(t), policy, service), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(b.Notes, "\n"), "left out ValidatingAdmissionPolicy/ovsmesh-p:") {
		t.Errorf("notes %q, want one about the admission policy left out", b.Notes)
	}
	svc, ok := b.Files["manifests/ovsmesh-metrics_v1_service.yaml"]
	if !ok {
		t.Fatalf("the Service is not in the bundle; files: %v", sortedKeys(b.Files))
	}
	if strings.Contains(string(svc), "namespace:") {
		t.Errorf("the Service keeps its namespace; OLM installs it into the OperatorGroup's:\n%s", svc)
	}

	daemonSet := obj(t, `{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: x, namespace: ovsmesh-system}}`)
	if _, err := Build(append(renderConfig(t), daemonSet), testOpts); err == nil || !strings.Contains(err.Error(), "cannot carry kind DaemonSet") {
		t.Errorf("a DaemonSet in config/ gave %v, want an error saying the bundle cannot carry it", err)
	}
}

func TestBuildRefusesDescriptorsTheSchemaLacks(t *testing.T) {
	objs := renderConfig(t)
	for _, u := range objs {
		if gk(u) == csvGK {
			owned, _, _ := unstructured.NestedSlice(u.Object, "spec", "customresourcedefinitions", "owned")
			descs, _, _ := unstructured.NestedSlice(owned[0].(map[string]any), "specDescriptors")
			descs = append(descs, map[string]any{"path": "tunnel.nosuchfield"})
			_ = unstructured.SetNestedSlice(owned[0].(map[string]any), descs, "specDescriptors")
			_ = unstructured.SetNestedSlice(u.Object, owned, "spec", "customresourcedefinitions", "owned")
		}
	}
	if _, err := Build(objs, testOpts); err == nil || !strings.Contains(err.Error(), `"nosuchfield" is not in the CRD schema`) {
		t.Errorf("a descriptor for a missing field gave %v, want an error naming the field", err)
	}
}

// TestCSVInstallStrategyIsConfigRBAC checks the generated CSV against the source files: its
// clusterPermissions are exactly the rules `make manifests` generated into
// config/rbac/role.yaml (what the operator needs for the agent DaemonSet, its
// ServiceAccount and ClusterRole, NodeSubnets, Nodes), its permissions the leader-election
// Role and the namespaced Role generated there (the agents' heartbeat Role), and the suggested namespace allows the privileged agents.
func TestCSVInstallStrategyIsConfigRBAC(t *testing.T) {
	root := repoRoot(t)
	b, err := Generate(DefaultInputs(root))
	if err != nil {
		t.Fatal(err)
	}
	csv := &v1alpha1.ClusterServiceVersion{}
	if err := yaml.Unmarshal(b.Files["manifests/ovsmesh.clusterserviceversion.yaml"], csv); err != nil {
		t.Fatal(err)
	}
	// readRules reads the rules of the kind (ClusterRole or Role) in file.
	readRules := func(file, kind string) []rbacv1.PolicyRule {
		raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			var r struct {
				Kind  string
				Rules []rbacv1.PolicyRule
			}
			if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			if r.Kind == kind {
				return r.Rules
			}
		}
		t.Fatalf("no %s in %s", kind, file)
		return nil
	}
	s := csv.Spec.InstallStrategy.StrategySpec
	const sa = "ovsmesh-controller-manager"
	if len(s.ClusterPermissions) != 1 || s.ClusterPermissions[0].ServiceAccountName != sa ||
		!reflect.DeepEqual(s.ClusterPermissions[0].Rules, readRules("role.yaml", "ClusterRole")) {
		t.Errorf("clusterPermissions are not the rules of config/rbac/role.yaml for %s: %+v", sa, s.ClusterPermissions)
	}
	if len(s.Permissions) != 1 || s.Permissions[0].ServiceAccountName != sa ||
		!reflect.DeepEqual(s.Permissions[0].Rules, append(readRules("leader_election_role.yaml", "Role"), readRules("role.yaml", "Role")...)) {
		t.Errorf("permissions are not the leader-election Role and the generated namespaced Role for %s: %+v", sa, s.Permissions)
	}
	if len(s.DeploymentSpecs) != 1 || s.DeploymentSpecs[0].Name != sa ||
		s.DeploymentSpecs[0].Spec.Template.Spec.ServiceAccountName != sa {
		t.Errorf("install deployments %+v, want one, %s, running as %s", s.DeploymentSpecs, sa, sa)
	}
	var ns struct {
		Metadata struct {
			Name   string
			Labels map[string]string
		}
	}
	if err := json.Unmarshal([]byte(csv.Annotations["operatorframework.io/suggested-namespace-template"]), &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Metadata.Name != "ovsmesh-system" || ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("suggested namespace %+v, want ovsmesh-system allowing privileged pods", ns.Metadata)
	}
	modes := map[v1alpha1.InstallModeType]bool{}
	for _, m := range csv.Spec.InstallModes {
		modes[m.Type] = m.Supported
	}
	if len(modes) != 4 || !modes[v1alpha1.InstallModeTypeAllNamespaces] || modes[v1alpha1.InstallModeTypeOwnNamespace] {
		t.Errorf("install modes %v, want all four with only AllNamespaces supported", modes)
	}
	var examples []map[string]any
	if err := json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &examples); err != nil || len(examples) != 1 || examples[0]["kind"] != "NetworkCluster" {
		t.Errorf("alm-examples %v (%v), want the sample NetworkCluster", csv.Annotations["alm-examples"], err)
	}
}
