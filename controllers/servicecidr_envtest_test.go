package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestServiceCIDRConflict: a Service CIDR (a real ServiceCIDR object of the API server)
// that overlaps the cluster CIDR keeps nodes from getting subnets and makes the
// NetworkCluster Degraded naming it; once it goes, allocation goes on.
func TestServiceCIDRConflict(t *testing.T) {
	e := newOpEnv(t)
	var l networkingv1.ServiceCIDRList
	if err := e.c.List(e.ctx(), &l); err != nil {
		t.Fatalf("listing ServiceCIDRs (served since 1.33): %v", err)
	}
	for _, s := range l.Items {
		t.Logf("ServiceCIDR %s: %v", s.Name, s.Spec.CIDRs)
	}
	extra := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "extra-" + e.prefix},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.244.128.0/20"}}}
	if err := e.c.Create(e.ctx(), extra); err != nil {
		t.Fatal(err)
	}
	e.startManager(Options{})
	e.createCluster(nil)
	node := e.mustNode(e.nodeName(0), "192.168.4.10", nil)
	e.eventually(20*time.Second, "Degraded ServiceCIDRConflict", func() error {
		d := meta.FindStatusCondition(e.cluster().Status.Conditions, v1alpha1.ConditionDegraded)
		if d == nil || d.Status != metav1.ConditionTrue || d.Reason != ReasonServiceCIDRConflict ||
			!strings.Contains(d.Message, "10.244.128.0/20 (ServiceCIDR "+extra.Name+")") {
			return fmt.Errorf("Degraded = %+v", d)
		}
		t.Logf("Degraded: %s", d.Message)
		return nil
	})
	// The IPAM pass that saw the node ran before or with the status pass that reported;
	// give a later one the time to (wrongly) allocate.
	time.Sleep(time.Second)
	if _, err := e.subnet(node.Name); isGone(err) != nil {
		t.Fatalf("a node got a subnet while the cluster CIDR overlaps a Service CIDR (%v)", err)
	}

	// The ServiceCIDR goes (kube-controller-manager would drop its finalizer once no
	// Service uses it; there is none here).
	if err := e.c.Delete(e.ctx(), extra); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "ServiceCIDR gone", func() error {
		var cur networkingv1.ServiceCIDR
		if err := e.c.Get(e.ctx(), client.ObjectKeyFromObject(extra), &cur); err != nil {
			return client.IgnoreNotFound(err)
		}
		cur.Finalizers = nil
		if err := e.c.Update(e.ctx(), &cur); err != nil {
			return err
		}
		return fmt.Errorf("still there")
	})
	e.waitSubnets(30*time.Second, node.Name)
	e.eventually(20*time.Second, "not Degraded", func() error {
		if d := meta.FindStatusCondition(e.cluster().Status.Conditions, v1alpha1.ConditionDegraded); d == nil || d.Reason == ReasonServiceCIDRConflict {
			return fmt.Errorf("Degraded = %+v", d)
		}
		return nil
	})
}
