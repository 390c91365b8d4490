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
	// ConditionNodeIPConflict is written by the operator, not the agent: True on the
	// NodeSubnet of the later of two Nodes that report the same InternalIP (no tunnel can
	// mean both; every agent leaves that address out), naming the other. Removed once the
	// addresses differ.
	ConditionNodeIPConflict = "NodeIPConflict"

	// FinalizerCleanup holds a NetworkCluster until every node reports CleanedUp.
	FinalizerCleanup = "network.ovsmesh.io/cleanup"
)

// MasqueradeEnabled reports the effective masquerade setting (default on).
func (s *NetworkClusterSpec) MasqueradeEnabled() bool {
	return s.Masquerade == nil || *s.Masquerade
}
