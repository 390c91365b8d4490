package v1alpha1

// Condition types and reasons shared by the operator and the agent.
const (
	// NetworkCluster conditions.
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"

	// NodeSubnet conditions.
	ConditionReady     = "Ready"
	ConditionCleanedUp = "CleanedUp"

	// FinalizerCleanup holds a NetworkCluster until every node reports CleanedUp.
	FinalizerCleanup = "network.ovsmesh.io/cleanup"

	// ExternalIDPrefix marks everything ovsmesh creates in OVSDB (external_ids keys).
	ExternalIDPrefix = "ovsmesh.io/"
)

// MasqueradeEnabled reports the effective masquerade setting (default on).
func (s *NetworkClusterSpec) MasqueradeEnabled() bool {
	return s.Masquerade == nil || *s.Masquerade
}
