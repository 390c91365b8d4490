package controllers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1 "github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// TestOperatorWorksWithGeneratedRBAC runs the operator as a user that holds only the
// ClusterRole generated from the +kubebuilder:rbac markers (config/rbac/role.yaml) through a
// whole lifecycle: allocation, agent objects (creating the agents' ClusterRole passes RBAC
// escalation prevention only if the operator holds every permission it grants), status,
// events, uninstall. Every other test runs as cluster admin, which would hide a missing marker.
func TestOperatorWorksWithGeneratedRBAC(t *testing.T) {
	e := newOpEnv(t)
	role, nsRole := generatedRoles(t)
	role.Name = e.prefix + "-" + role.Name
	if err := e.c.Create(e.ctx(), role); err != nil {
		t.Fatal(err)
	}
	user := "ovsmesh-operator-" + e.prefix
	if err := e.c.Create(e.ctx(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}); err != nil {
		t.Fatal(err)
	}
	// The namespaced part (markers with namespace=), in the operator's namespace, as the
	// RoleBinding of config/rbac grants it.
	nsRole.Namespace = e.ns
	if err := e.c.Create(e.ctx(), nsRole); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Create(e.ctx(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: nsRole.Name, Namespace: e.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: nsRole.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}); err != nil {
		t.Fatal(err)
	}
	au, err := e.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.startManagerAs(au.Config(), Options{CleanupTimeout: time.Minute})

	names := e.installed(2)
	for _, n := range names {
		e.setAgentStatus(n, func(st *v1.NodeSubnetStatus) {
			st.ObservedGeneration = e.cluster().Generation
			meta.SetStatusCondition(&st.Conditions, cond(v1.ConditionReady, "True", "Applied"))
		})
	}
	e.eventually(20*time.Second, "Available", func() error {
		if !meta.IsStatusConditionTrue(e.cluster().Status.Conditions, v1.ConditionAvailable) {
			return fmt.Errorf("conditions %+v", e.cluster().Status.Conditions)
		}
		return nil
	})
	e.eventually(10*time.Second, "an event written by the operator", func() error {
		_, err := e.findEvent(names[0], ReasonSubnetAllocated)
		return err
	})

	if err := e.c.Delete(e.ctx(), e.cluster()); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		e.eventually(20*time.Second, "teardown on "+n, func() error {
			s, err := e.subnet(n)
			if err != nil || !s.Spec.Teardown {
				return fmt.Errorf("teardown not set (%v)", err)
			}
			return nil
		})
		e.setAgentStatus(n, func(st *v1.NodeSubnetStatus) {
			meta.SetStatusCondition(&st.Conditions, cond(v1.ConditionCleanedUp, "True", "Removed"))
		})
	}
	e.eventually(30*time.Second, "uninstall to finish", e.everythingGone)
	if logs := e.logs.String(); strings.Contains(logs, "forbidden") {
		t.Errorf("the operator was refused something under its generated role:\n%s", grepLines(logs, "forbidden"))
	}
}

// generatedRoles reads config/rbac/role.yaml: the ClusterRole and the Role (markers with
// namespace=) that `make manifests` generates from the markers.
func generatedRoles(t *testing.T) (*rbacv1.ClusterRole, *rbacv1.Role) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(raw), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("role.yaml has %d documents, want a ClusterRole and a Role", len(docs))
	}
	cr, r := &rbacv1.ClusterRole{}, &rbacv1.Role{}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), cr); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), r); err != nil {
		t.Fatal(err)
	}
	if cr.Kind != "ClusterRole" || r.Kind != "Role" {
		t.Fatalf("role.yaml holds a %s and a %s, want a ClusterRole and a Role", cr.Kind, r.Kind)
	}
	return cr, r
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
