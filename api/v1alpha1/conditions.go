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

	// ReasonSpanningTreeConverging is the NodeSubnet Ready=False reason while the node is
	// fully programmed but spanning tree has not yet moved every tunnel port to a stable state.
	// It is progress, not a fault: the operator reports it under Progressing, not Degraded.
	ReasonSpanningTreeConverging = "SpanningTreeConverging"

	// ReasonTunnelsNotLive is the NodeSubnet Ready=False reason under SplitHorizon while the
	// node is programmed but ovs-vswitchd has not set every tunnel port up yet. Progress too.
	ReasonTunnelsNotLive = "TunnelsNotLive"

	// ReasonSpanningTreeLimit: the mesh needs more tunnel ports than the loop-prevention
	// protocol covers (LoopPreventionProtocol.MaxTunnels). The agent leaves OVS as it is and
	// reports Ready=False; the operator reports Degraded as soon as the node count says so.
	ReasonSpanningTreeLimit = "SpanningTreeLimit"

	// FinalizerCleanup holds a NetworkCluster until every node reports CleanedUp.
	FinalizerCleanup = "network.ovsmesh.io/cleanup"

	// ExternalIDPrefix marks everything ovsmesh creates in OVSDB (external_ids keys).
	ExternalIDPrefix = "ovsmesh.io/"
)

// MasqueradeEnabled reports the effective masquerade setting (default on).
func (s *NetworkClusterSpec) MasqueradeEnabled() bool {
	return s.Masquerade == nil || *s.Masquerade
}
