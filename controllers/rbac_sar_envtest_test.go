package controllers

import (
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// sarCheck is one question to the API server's authorizer about the operator's identity.
type sarCheck struct {
	allow bool
	attrs authorizationv1.ResourceAttributes
}

func (c sarCheck) String() string {
	a := c.attrs
	where := "cluster-wide"
	if a.Namespace != "" {
		where = "in " + a.Namespace
	}
	res := a.Resource
	if a.Group != "" {
		res += "." + a.Group
	}
	return fmt.Sprintf("%s %s %q %s", a.Verb, res, a.Name, where)
}

// operatorSARChecks are what the operator must and must not be allowed, for its namespace ns.
// Each denial has a matching grant (same verb and resource, in the operator's namespace or on
// its own name), so that a denial cannot come from a user who holds nothing at all.
func operatorSARChecks(ns string) []sarCheck {
	const rbacG, vapG = rbacv1.GroupName, "admissionregistration.k8s.io"
	in := func(allow bool, verb, group, resource, namespace, name string) sarCheck {
		return sarCheck{allow, authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: namespace, Name: name}}
	}
	cluster := func(allow bool, verb, group, resource, name string) sarCheck {
		return in(allow, verb, group, resource, "", name)
	}
	return []sarCheck{
		// The agent DaemonSet and ServiceAccount: in the operator's namespace only.
		in(true, "create", "apps", "daemonsets", ns, ""),
		in(false, "create", "apps", "daemonsets", "kube-system", ""),
		in(true, "delete", "apps", "daemonsets", ns, AgentName),
		in(false, "delete", "apps", "daemonsets", "kube-system", "kube-proxy"),
		in(true, "watch", "apps", "daemonsets", ns, ""),
		in(false, "watch", "apps", "daemonsets", "", ""), // all namespaces
		in(true, "create", "", "serviceaccounts", ns, ""),
		in(false, "create", "", "serviceaccounts", "kube-system", ""),
		in(true, "update", "", "serviceaccounts", ns, AgentName),
		in(false, "update", "", "serviceaccounts", "kube-system", "default"),

		// Leases (subnet claims; the agents' heartbeats): the operator's namespace only, any
		// name there (claims are created with generated names).
		in(true, "create", "coordination.k8s.io", "leases", ns, ""),
		in(false, "create", "coordination.k8s.io", "leases", "kube-system", ""),
		in(false, "create", "coordination.k8s.io", "leases", "kube-node-lease", ""),
		in(true, "delete", "coordination.k8s.io", "leases", ns, "some-claim"),
		in(false, "delete", "coordination.k8s.io", "leases", "kube-system", "kube-controller-manager"),
		in(true, "update", "coordination.k8s.io", "leases", ns, "kube-controller-manager"),
		in(false, "update", "coordination.k8s.io", "leases", "kube-system", "kube-controller-manager"),
		in(false, "update", "coordination.k8s.io", "leases", "kube-node-lease", "node-1"),
		in(false, "list", "coordination.k8s.io", "leases", "", ""), // all namespaces

		// The agents' ClusterRole and ClusterRoleBinding: by name. create with a name is the
		// server-side apply path; a create without one (POST) cannot match a name-limited rule.
		cluster(true, "create", rbacG, "clusterroles", AgentName),
		cluster(false, "create", rbacG, "clusterroles", ""),
		cluster(false, "create", rbacG, "clusterroles", "cluster-admin"),
		cluster(true, "create", rbacG, "clusterrolebindings", AgentName),
		cluster(false, "create", rbacG, "clusterrolebindings", ""),
		cluster(false, "create", rbacG, "clusterrolebindings", "cluster-admin"),
		cluster(true, "update", rbacG, "clusterroles", AgentName),
		cluster(false, "update", rbacG, "clusterroles", "cluster-admin"),
		cluster(true, "patch", rbacG, "clusterroles", AgentName),
		cluster(false, "patch", rbacG, "clusterroles", "cluster-admin"),
		cluster(true, "delete", rbacG, "clusterroles", AgentName),
		cluster(false, "delete", rbacG, "clusterroles", "cluster-admin"),
		cluster(true, "update", rbacG, "clusterrolebindings", AgentName),
		cluster(false, "update", rbacG, "clusterrolebindings", "cluster-admin"),
		cluster(true, "delete", rbacG, "clusterrolebindings", AgentName),
		cluster(false, "delete", rbacG, "clusterrolebindings", "cluster-admin"),
		// Reading: its own only (the cache lists by metadata.name).
		cluster(true, "list", rbacG, "clusterroles", AgentName),
		cluster(false, "list", rbacG, "clusterroles", ""),
		cluster(true, "get", rbacG, "clusterrolebindings", AgentName),
		cluster(false, "get", rbacG, "clusterrolebindings", "cluster-admin"),
		// bind: the agents' ClusterRole only; escalate: never.
		cluster(true, "bind", rbacG, "clusterroles", AgentName),
		cluster(false, "bind", rbacG, "clusterroles", "cluster-admin"),
		cluster(false, "bind", rbacG, "clusterroles", ""),
		cluster(false, "escalate", rbacG, "clusterroles", AgentName),
		cluster(false, "escalate", rbacG, "clusterroles", ""),
		in(false, "escalate", rbacG, "roles", ns, ""),
		in(false, "bind", rbacG, "roles", ns, ""),

		// The agents' admission policy and binding: by name.
		cluster(true, "create", vapG, "validatingadmissionpolicies", AgentPolicyName),
		cluster(false, "create", vapG, "validatingadmissionpolicies", ""),
		cluster(true, "delete", vapG, "validatingadmissionpolicies", AgentPolicyName),
		cluster(false, "delete", vapG, "validatingadmissionpolicies", "someone-elses-policy"),
		cluster(true, "update", vapG, "validatingadmissionpolicybindings", AgentPolicyName),
		cluster(false, "update", vapG, "validatingadmissionpolicybindings", "someone-elses-policy"),

		// Never granted anywhere.
		in(false, "get", "", "secrets", ns, ""),
	}
}

// TestOperatorRBACIsLeastPrivilege asks the API server's authorizer (SubjectAccessReview,
// created by the admin for the operator's user) what the generated RBAC, bound as
// config/default binds it, lets the operator do, and then tries what matters most for real:
// binding cluster-admin must be refused whichever way it is attempted.
func TestOperatorRBACIsLeastPrivilege(t *testing.T) {
	e := newOpEnv(t)
	user, operatorCfg := e.grantGeneratedRBAC()

	for _, c := range operatorSARChecks(e.ns) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: c.attrs.DeepCopy(),
		}}
		if err := e.c.Create(e.ctx(), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.EvaluationError != "" {
			t.Errorf("%s: evaluation error %s", c, sar.Status.EvaluationError)
		}
		if sar.Status.Allowed != c.allow {
			t.Errorf("%s: allowed=%v, want %v (%s)", c, sar.Status.Allowed, c.allow, sar.Status.Reason)
		}
	}

	op, err := client.New(operatorCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	subject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}
	crb := func(name, role string) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		}
	}
	applyCRB := func(name, role string) error {
		return op.Apply(e.ctx(), rbacv1ac.ClusterRoleBinding(name).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(role)).
			WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.UserKind).WithAPIGroup(rbacv1.GroupName).WithName(user)),
			client.FieldOwner(FieldManager))
	}
	// Whatever an attempt below wrongly creates is removed again (as admin).
	for _, name := range []string{AgentName, e.prefix + "-escalation"} {
		t.Cleanup(func() { _ = client.IgnoreNotFound(e.c.Delete(e.ctx(), crb(name, ""))) })
	}
	attempts := []struct {
		what string
		err  error
	}{
		// RBAC refuses the POST: its name is not known when it is authorized.
		{"create (POST) a ClusterRoleBinding to cluster-admin", op.Create(e.ctx(), crb(e.prefix+"-escalation", "cluster-admin"))},
		// Under the operator's own name the create is authorized, and escalation prevention
		// refuses it: the operator neither holds cluster-admin's rights nor may bind it.
		{"server-side apply its own ClusterRoleBinding to cluster-admin", applyCRB(AgentName, "cluster-admin")},
		{"server-side apply another ClusterRoleBinding to cluster-admin", applyCRB(e.prefix+"-escalation", "cluster-admin")},
		{"create (POST) its own ClusterRoleBinding to its own ClusterRole", op.Create(e.ctx(), crb(AgentName, AgentName))},
	}
	for _, a := range attempts {
		if !apierrors.IsForbidden(a.err) {
			t.Errorf("%s: got %v, want Forbidden", a.what, a.err)
		} else {
			t.Logf("%s: refused as expected: %v", a.what, a.err)
		}
	}
	// What the operator does do is allowed through the same client, so the refusals above
	// are about what was asked, not about the client: server-side apply of its own binding
	// to its own ClusterRole (bind on ovsmesh-agent; the role need not exist yet), and a
	// Lease in its namespace but not in kube-system.
	if err := applyCRB(AgentName, AgentName); err != nil {
		t.Errorf("server-side apply of the agents' ClusterRoleBinding: %v", err)
	}
	lease := func(ns string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.prefix + "-probe", Namespace: ns}}
	}
	if err := op.Create(e.ctx(), lease(e.ns)); err != nil {
		t.Errorf("creating a Lease in the operator's namespace: %v", err)
	}
	t.Cleanup(func() { _ = client.IgnoreNotFound(e.c.Delete(e.ctx(), lease(e.ns))) })
	if err := op.Create(e.ctx(), lease("kube-system")); !apierrors.IsForbidden(err) {
		t.Errorf("creating a Lease in kube-system: got %v, want Forbidden", err)
		_ = e.c.Delete(e.ctx(), lease("kube-system"))
	}
}
