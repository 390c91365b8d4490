package v1alpha1

// The reasons of a NodeSubnet's Ready condition, which the agent writes: the README's table
// of reasons lists exactly these (TestReadmeListsEveryReadyReason), and the operator,
// kubectl ovsmesh and the metrics read them. When Ready is False the reason says which layer
// to look at.
const (
	// ReasonApplied (True): host, OVS and CNI config match the NetworkCluster, and every
	// tunnel and the veth port carry traffic or are blocked by the tree on purpose.
	ReasonApplied = "Applied"

	// ReasonSpanningTreeConverging: the node is fully programmed but spanning tree has not yet
	// moved every tunnel port to a stable state. It is progress, not a fault: the operator
	// reports it under Progressing, not Degraded.
	ReasonSpanningTreeConverging = "SpanningTreeConverging"

	// ReasonTunnelsNotLive: programmed (SplitHorizon), but ovs-vswitchd has not set every
	// tunnel port up yet. Progress too.
	ReasonTunnelsNotLive = "TunnelsNotLive"

	// ReasonSpanningTreeLimit: the mesh needs more tunnel ports than the loop-prevention
	// protocol covers (LoopPreventionProtocol.MaxTunnels). The agent leaves OVS as it is; the
	// operator reports Degraded as soon as the node count says so.
	ReasonSpanningTreeLimit = "SpanningTreeLimit"

	// ReasonNoUnderlay: no interface holds the NodeSubnet's node IP.
	ReasonNoUnderlay = "NoUnderlay"
	// ReasonInvalidConfig: the NodeSubnet or NetworkCluster cannot be applied as written.
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonHostConflict: something on the host that is not ovsmesh's is in the way (a bridge
	// with another address or ports, an unmarked veth, a foreign route to the cluster CIDR)
	// and is left untouched.
	ReasonHostConflict = "HostConflict"
	// ReasonHostError: a netlink, nftables or sysctl call failed.
	ReasonHostError = "HostError"
	// ReasonOVSUnavailable: ovsdb-server is not reachable, or stopped answering.
	ReasonOVSUnavailable = "OVSUnavailable"
	// ReasonVswitchdUnavailable: the database is programmed, but ovs-vswitchd, which turns it
	// into a data path, does not answer.
	ReasonVswitchdUnavailable = "VswitchdUnavailable"
	// ReasonOVSError: an OVSDB transaction was refused.
	ReasonOVSError = "OVSError"
	// ReasonCNIConfigError: the CNI config could not be written, or names a plugin that is
	// not installed.
	ReasonCNIConfigError = "CNIConfigError"

	// ReasonTornDown: uninstall in progress on this node (spec.teardown).
	ReasonTornDown = "TornDown"
	// ReasonCleanedUp and ReasonCleanupFailed are the reasons of the CleanedUp condition.
	ReasonCleanedUp     = "CleanedUp"
	ReasonCleanupFailed = "CleanupFailed"
)

// ReadyReasons lists every reason the agent writes on the Ready and CleanedUp conditions.
var ReadyReasons = []string{
	ReasonApplied, ReasonSpanningTreeConverging, ReasonTunnelsNotLive, ReasonSpanningTreeLimit,
	ReasonNoUnderlay, ReasonInvalidConfig, ReasonHostConflict, ReasonHostError,
	ReasonOVSUnavailable, ReasonVswitchdUnavailable, ReasonOVSError, ReasonCNIConfigError,
	ReasonTornDown, ReasonCleanedUp, ReasonCleanupFailed,
}

// Tunnel overheads in bytes, which size the automatic MTU (spec.mtu 0): outer IPv4 (20) +
// GRE with key (4+4) + inner Ethernet (14) = 42; outer IPv4 (20) + UDP (8) + VXLAN (8) +
// inner Ethernet (14) = 50. OVS always sends the GRE key field, so GRE is 42 even when no
// key is configured.
const (
	OverheadGRE   = 42
	OverheadVXLAN = 50
)

// Overhead is the bytes a tunnel of type t adds to a frame.
func (t TunnelType) Overhead() int {
	if t == TunnelVXLAN {
		return OverheadVXLAN
	}
	return OverheadGRE
}
