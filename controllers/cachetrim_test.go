package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestTrimNodeSubnet: the operator's cache keeps what status aggregation reads (conditions,
// counts) and drops the unhealthy-peer list and managedFields.
func TestTrimNodeSubnet(t *testing.T) {
	in := &v1alpha1.NodeSubnet{
		ObjectMeta: metav1.ObjectMeta{Name: "a", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "ovsmesh-agent"}}},
		Spec:       v1alpha1.NodeSubnetSpec{NodeName: "a", CIDR: "10.244.1.0/24"},
		Status: v1alpha1.NodeSubnetStatus{
			TunnelCount:    2,
			UnhealthyPeers: []v1alpha1.PeerStatus{{NodeName: "b"}, {NodeName: "c"}},
			Conditions:     []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}},
		},
	}
	out, err := trimNodeSubnet(in)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1alpha1.NodeSubnet)
	if got.Status.UnhealthyPeers != nil || got.ManagedFields != nil {
		t.Errorf("kept peers %v / managedFields %v", got.Status.UnhealthyPeers, got.ManagedFields)
	}
	if got.Status.TunnelCount != 2 || len(got.Status.Conditions) != 1 || got.Spec.CIDR != "10.244.1.0/24" {
		t.Errorf("dropped what the operator reads: %+v", got)
	}
}
