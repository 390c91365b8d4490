package agent

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

func TestTrimForCache(t *testing.T) {
	subnet := func(name string) *v1alpha1.NodeSubnet {
		return &v1alpha1.NodeSubnet{
			ObjectMeta: metav1.ObjectMeta{Name: name, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "ovsmesh-agent"}}},
			Spec:       v1alpha1.NodeSubnetSpec{NodeName: name, CIDR: "10.244.1.0/24"},
			Status:     v1alpha1.NodeSubnetStatus{TunnelCount: 2, UnhealthyPeers: []v1alpha1.PeerStatus{{NodeName: "b"}, {NodeName: "c"}}},
		}
	}
	trim := trimForCache("a")

	out, err := trim(subnet("a"))
	if err != nil {
		t.Fatal(err)
	}
	own := out.(*v1alpha1.NodeSubnet)
	if own.Status.TunnelCount != 2 || len(own.Status.UnhealthyPeers) != 2 {
		t.Errorf("own status trimmed: %+v (the agent patches it against the cached copy)", own.Status)
	}
	if own.ManagedFields != nil {
		t.Errorf("own managedFields kept: %+v", own.ManagedFields)
	}

	out, err = trim(subnet("b"))
	if err != nil {
		t.Fatal(err)
	}
	peer := out.(*v1alpha1.NodeSubnet)
	if peer.Status.TunnelCount != 0 || peer.Status.UnhealthyPeers != nil || peer.ManagedFields != nil {
		t.Errorf("peer kept status %+v / managedFields %+v", peer.Status, peer.ManagedFields)
	}
	if peer.Spec.CIDR != "10.244.1.0/24" || peer.Spec.NodeName != "b" {
		t.Errorf("peer spec changed: %+v", peer.Spec)
	}
}
