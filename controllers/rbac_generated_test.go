package controllers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// generatedRBAC reads config/rbac/role.yaml, which `make manifests` generates from the
// markers in rbac.go: exactly one ClusterRole (cluster-scoped rights) and one Role (rights in
// the operator's namespace). Decoding is strict, so a field the test does not know fails it.
func generatedRBAC(t *testing.T) (*rbacv1.ClusterRole, *rbacv1.Role) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cr *rbacv1.ClusterRole
	var r *rbacv1.Role
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		switch {
		case tm.Kind == "":
			continue // an empty document (the file starts with ---)
		case tm.Kind == "ClusterRole" && cr == nil:
			cr = &rbacv1.ClusterRole{}
			err = yaml.UnmarshalStrict(doc, cr)
		case tm.Kind == "Role" && r == nil:
			r = &rbacv1.Role{}
			err = yaml.UnmarshalStrict(doc, r)
		default:
			t.Fatalf("role.yaml: unexpected %s %q (want one ClusterRole and one Role)", tm.Kind, tm.String())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if cr == nil || r == nil {
		t.Fatalf("role.yaml: ClusterRole %v, Role %v: want both", cr != nil, r != nil)
	}
	return cr, r
}

// grantGeneratedRBAC creates a user holding only the generated RBAC, bound as config/default
// binds it: the ClusterRole cluster-wide and the Role in the operator's namespace e.ns. It
// returns the user's name and credentials. The control plane is the test's own and goes with
// it; the grants are removed at the end all the same.
func (e *opEnv) grantGeneratedRBAC() (string, *rest.Config) {
	e.t.Helper()
	clusterRole, role := generatedRBAC(e.t)
	user := "ovsmesh-operator-" + e.prefix
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	name := e.prefix + "-" + clusterRole.Name
	clusterRole.Name = name
	role.Name, role.Namespace = name, e.ns
	for _, o := range []client.Object{
		clusterRole,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   subjects,
		},
		role,
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   subjects,
		},
	} {
		if err := e.c.Create(e.ctx(), o); err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { _ = e.c.Delete(context.Background(), o) })
	}
	au, err := e.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return user, au.Config()
}
