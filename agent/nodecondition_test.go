package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

func TestNodeNetworkCondition(t *testing.T) {
	now := metav1.Now()
	with := func(cs ...metav1.Condition) v1alpha1.NodeSubnetStatus {
		return v1alpha1.NodeSubnetStatus{Conditions: cs}
	}
	tests := []struct {
		name       string
		st         v1alpha1.NodeSubnetStatus
		status     corev1.ConditionStatus
		reason     string
		msgContain string
	}{
		{"not applied yet", with(), corev1.ConditionTrue, NodeReasonDown, "not applied"},
		{"ready", with(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonApplied, Message: "2 gre tunnels"}),
			corev1.ConditionFalse, NodeReasonUp, "2 gre tunnels"},
		{"not ready", with(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonOVSUnavailable, Message: "socket missing"}),
			corev1.ConditionTrue, NodeReasonDown, "OVSUnavailable: socket missing"},
		{"cleaned up", with(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "TornDown"},
			metav1.Condition{Type: v1alpha1.ConditionCleanedUp, Status: metav1.ConditionTrue}), corev1.ConditionTrue, NodeReasonRemoved, "removed"},
	}
	for _, tc := range tests {
		c := nodeNetworkCondition(tc.st, now)
		if c.Type != corev1.NodeNetworkUnavailable || c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msgContain) {
			t.Errorf("%s: %+v, want %s %s containing %q", tc.name, c, tc.status, tc.reason, tc.msgContain)
		}
	}
}
