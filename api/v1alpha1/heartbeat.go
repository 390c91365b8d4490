package v1alpha1

import "time"

// The agent heartbeat: every agent renews a Lease (coordination.k8s.io/v1) named
// HeartbeatLeaseName(node) in the operator's namespace, holderIdentity = the node name,
// every HeartbeatRenewInterval, as the kubelet renews its node Lease. The operator counts a
// node whose Lease has not been renewed for its leaseDurationSeconds as not ready (its agent
// crashed, hangs or the node is off), whatever its NodeSubnet status last said.
const (
	// HeartbeatLeasePrefix + node name is the Lease name.
	HeartbeatLeasePrefix = "ovsmesh-agent-"
	// LabelHeartbeat (value "true") marks the heartbeat Leases.
	LabelHeartbeat = "network.ovsmesh.io/agent-heartbeat"
	// HeartbeatLeaseDuration is the Lease's leaseDurationSeconds: four renewals may fail
	// before the node counts as not reporting (the kubelet's node Lease uses 40 s too).
	HeartbeatLeaseDuration = 40 * time.Second
	// HeartbeatRenewInterval is how often the agent renews; each renewal is bounded by it.
	HeartbeatRenewInterval = 10 * time.Second
)

// HeartbeatLeaseName is the name of node's heartbeat Lease. Node names are DNS subdomains
// of at most 253 characters; the Lease name may be longer than a Node's by the prefix, and
// the API server refuses one over 253: such a node has no heartbeat (and is never counted
// as silent).
func HeartbeatLeaseName(node string) string { return HeartbeatLeasePrefix + node }
