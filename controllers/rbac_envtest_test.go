package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestOperatorWorksWithGeneratedRBAC runs the operator as a user that holds only the
// ClusterRole and the Role (bound in the operator's namespace) generated from the
// +kubebuilder:rbac markers (config/rbac/role.yaml) through a whole lifecycle: allocation,
// agent objects (creating the agents' ClusterRole passes RBAC escalation prevention only if
// the operator holds every permission it grants; its name-limited create works only through
// server-side apply), status, events, uninstall. Every other test runs as cluster admin, which would hide a missing marker.
func TestOperatorWorksWithGeneratedRBAC(t *testing.T) {
	e := newOpEnv(t)
	_, operator := e.grantGeneratedRBAC()
	e.startManagerAs(operator, Options{CleanupTimeout: time.Minute})

	names := e.installed(2)
	// The agents' ClusterRole and binding exist: their name-limited create worked through
	// server-side apply.
	for _, o := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}} {
		if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentName}, o); err != nil {
			t.Errorf("agent %T: %v", o, err)
		}
	}
	for _, n := range names {
		e.setAgentStatus(n, func(st *v1alpha1.NodeSubnetStatus) {
			st.ObservedGeneration = e.cluster().Generation
			meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, "True", "Applied"))
		})
	}
	e.eventually(20*time.Second, "Available", func() error {
		if !meta.IsStatusConditionTrue(e.cluster().Status.Conditions, v1alpha1.ConditionAvailable) {
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
		e.setAgentStatus(n, func(st *v1alpha1.NodeSubnetStatus) {
			meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionCleanedUp, "True", "Removed"))
		})
	}
	e.eventually(30*time.Second, "uninstall to finish", e.everythingGone)
	if logs := e.logs.String(); strings.Contains(logs, "forbidden") {
		t.Errorf("the operator was refused something under its generated role:\n%s", grepLines(logs, "forbidden"))
	}
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
