package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestDuplicateNodeIP: two Nodes reporting one InternalIP → the later one's NodeSubnet gets
// NodeIPConflict naming the earlier, the NetworkCluster is Degraded naming both, a Warning
// Event is sent about each Node; once the later one's address changes, the condition goes.
func TestDuplicateNodeIP(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	e.createCluster(nil)
	first := e.mustNode(e.nodeName(0), "192.168.7.10", nil)
	e.waitSubnets(30*time.Second, first.Name)
	later := e.mustNode(e.nodeName(1), "192.168.7.10", nil)
	e.waitSubnets(30*time.Second, first.Name, later.Name)

	e.eventually(20*time.Second, "NodeIPConflict on the later node's NodeSubnet", func() error {
		s, err := e.subnet(later.Name)
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionNodeIPConflict)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonDuplicateNodeIP || !strings.Contains(c.Message, first.Name) {
			return fmt.Errorf("NodeIPConflict = %+v", c)
		}
		t.Logf("NodeIPConflict: %s", c.Message)
		return nil
	})
	if s, err := e.subnet(first.Name); err != nil || meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionNodeIPConflict) != nil {
		t.Errorf("the earlier node's NodeSubnet is marked too (%v)", err)
	}
	e.eventually(20*time.Second, "Degraded naming both", func() error {
		d := meta.FindStatusCondition(e.cluster().Status.Conditions, v1alpha1.ConditionDegraded)
		if d == nil || d.Reason != ReasonDuplicateNodeIP || !strings.Contains(d.Message, first.Name) || !strings.Contains(d.Message, later.Name) {
			return fmt.Errorf("Degraded = %+v", d)
		}
		return nil
	})
	for _, n := range []*corev1.Node{first, later} {
		e.eventually(10*time.Second, "Event about "+n.Name, func() error {
			ev, err := e.findEvent(n.Name, ReasonDuplicateNodeIP)
			if err == nil && ev.Type != corev1.EventTypeWarning {
				return fmt.Errorf("event type %s", ev.Type)
			}
			return err
		})
	}

	// The agent's own conditions survive the operator's patches, and the operator's the
	// agent's (setAgentStatus writes as an agent does, from the object it read).
	e.setAgentStatus(later.Name, func(st *v1alpha1.NodeSubnetStatus) {
		meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, "True", "Applied"))
	})
	if err := e.setNodeIP(e.ctx(), later, "192.168.7.11"); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "NodeIPConflict removed", func() error {
		s, err := e.subnet(later.Name)
		if err != nil {
			return err
		}
		if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionNodeIPConflict); c != nil {
			return fmt.Errorf("NodeIPConflict = %+v", c)
		}
		if r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); r == nil || r.Status != metav1.ConditionTrue {
			return fmt.Errorf("the agent's Ready was lost: %+v", r)
		}
		return nil
	})
}
