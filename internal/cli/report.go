package cli

import (
	"time"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// The -o json documents. Field names are part of the plugin's interface: scripts read them,
// so they are only ever added to, and every field is always present (no omitempty on the
// top-level shapes), so a consumer need not tell "absent" from "zero".

// StatusReport is the output of `kubectl ovsmesh status`.
type StatusReport struct {
	Cluster ClusterSummary `json:"cluster"`
	Nodes   []NodeRow      `json:"nodes"`
	Matrix  Matrix         `json:"matrix"`
	// Unreadable says what could not be read and why (no rights in the operator's
	// namespace, say); what depends on it is shown as unknown.
	Unreadable []string `json:"unreadable"`
}

// ClusterSummary is the NetworkCluster "default".
type ClusterSummary struct {
	Name        string `json:"name"`
	Found       bool   `json:"found"`
	ClusterCIDR string `json:"clusterCIDR"`
	TunnelType  string `json:"tunnelType"`
	Protocol    string `json:"protocol"`
	// SpecMTU is spec.mtu: 0 means each node derives it from its underlay.
	SpecMTU     int32       `json:"specMTU"`
	NodesTotal  int32       `json:"nodesTotal"`
	NodesReady  int32       `json:"nodesReady"`
	SubnetsUsed int32       `json:"subnetsUsed"`
	SubnetsFree int32       `json:"subnetsFree"`
	Conditions  []Condition `json:"conditions"`
}

// Condition is a metav1.Condition without the bookkeeping fields.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// NodeRow is one NodeSubnet as status shows it.
type NodeRow struct {
	Name   string `json:"name"`
	NodeIP string `json:"nodeIP"`
	CIDR   string `json:"cidr"`
	// Ready is the Ready condition's status (True, False, Unknown), "" when the agent has
	// not reported yet; Reason and Message are the condition's.
	Ready       string                 `json:"ready"`
	Reason      string                 `json:"reason"`
	Message     string                 `json:"message"`
	MTU         int32                  `json:"mtu"`
	TunnelCount int32                  `json:"tunnelCount"`
	Tunnels     v1alpha1.TunnelSummary `json:"tunnels"`
	// UnhealthyPeers is the agent's list (at most v1alpha1.MaxUnhealthyPeers).
	UnhealthyPeers []v1alpha1.PeerStatus `json:"unhealthyPeers"`
	// NodeIPConflict is the operator's message when another node has the same address.
	NodeIPConflict string    `json:"nodeIPConflict"`
	Heartbeat      Heartbeat `json:"heartbeat"`
	// PeersKnown is false when the node's view of its tunnels cannot be trusted (the agent
	// has not reported, is not reporting, or could not reach OVS): its matrix row is "?".
	PeersKnown bool `json:"peersKnown"`
}

// Heartbeat states.
const (
	HeartbeatLive       = "live"
	HeartbeatExpired    = "expired"
	HeartbeatNone       = "none"       // no Lease: an agent that has not started, or predates heartbeats
	HeartbeatUnreadable = "unreadable" // the Leases could not be read
)

// Heartbeat is the agent's Lease ovsmesh-agent-<node>.
type Heartbeat struct {
	State     string     `json:"state"`
	RenewTime *time.Time `json:"renewTime"`
	ExpiresAt *time.Time `json:"expiresAt"`
	// AgeSeconds is the time since the last renewal (0 without one).
	AgeSeconds int64 `json:"ageSeconds"`
}

// Matrix cell values other than a peer reason (v1alpha1.PeerReason*).
const (
	CellOK      = "ok"
	CellSelf    = "self" // the diagonal; printed as "—"
	CellUnknown = "?"
)

// Matrix is the node × node tunnel state: Cells[i][j] is the tunnel from Nodes[i] to
// Nodes[j] as Nodes[i]'s agent reports it. Above MatrixLimit nodes only the nodes with a
// problem are rows and columns (Reduced); the rest see each other ok.
type Matrix struct {
	Nodes      []string   `json:"nodes"`
	Cells      [][]string `json:"cells"`
	Reduced    bool       `json:"reduced"`
	TotalNodes int        `json:"totalNodes"`
	Summary    string     `json:"summary"`
}

// DiagnoseReport is the output of `kubectl ovsmesh diagnose NODE`.
type DiagnoseReport struct {
	Node string `json:"node"`
	// NodeFound and SubnetFound: the Node and its NodeSubnet exist.
	NodeFound      bool       `json:"nodeFound"`
	SubnetFound    bool       `json:"subnetFound"`
	CIDR           string     `json:"cidr"`
	Gateway        string     `json:"gateway"`
	NodeIP         string     `json:"nodeIP"`
	Ready          *Condition `json:"ready"`
	NodeIPConflict *Condition `json:"nodeIPConflict"`
	// OVSDB and Vswitchd are "ok", "unavailable", "error" or "unknown", with the why.
	OVSDB          Liveness               `json:"ovsdb"`
	Vswitchd       Liveness               `json:"vswitchd"`
	MTU            MTUInfo                `json:"mtu"`
	Heartbeat      Heartbeat              `json:"heartbeat"`
	Tunnels        v1alpha1.TunnelSummary `json:"tunnels"`
	TunnelCount    int32                  `json:"tunnelCount"`
	UnhealthyPeers []v1alpha1.PeerStatus  `json:"unhealthyPeers"`
	// SeenByPeers are the other nodes that list this node among their unhealthy peers.
	SeenByPeers []PeerView `json:"seenByPeers"`
	AgentPods   []PodInfo  `json:"agentPods"`
	Events      []Event    `json:"events"`
	// Drift says what the API records about drift the agent repaired.
	Drift      string   `json:"drift"`
	Unreadable []string `json:"unreadable"`
}

// Liveness of one OVS daemon as far as the agent's last report tells.
type Liveness struct {
	State  string `json:"state"`
	Detail string `json:"detail"`
}

// MTUInfo compares the MTU in use with what the underlay must carry.
type MTUInfo struct {
	InUse      int32  `json:"inUse"`
	SpecMTU    int32  `json:"specMTU"`
	TunnelType string `json:"tunnelType"`
	Overhead   int32  `json:"overhead"`
	// Underlay is the underlay MTU when the API implies it exactly (spec.mtu 0: the agent
	// used underlay − overhead), else 0; UnderlayAtLeast is the least it can be.
	Underlay        int32  `json:"underlay"`
	UnderlayAtLeast int32  `json:"underlayAtLeast"`
	Note            string `json:"note"`
}

// PeerView is one peer's report about the diagnosed node.
type PeerView struct {
	Node    string `json:"node"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// PodInfo is an agent pod on the node.
type PodInfo struct {
	Name     string `json:"name"`
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restarts"`
	// LastTermination is why a container last stopped (reason, exit code), if it did.
	LastTermination string `json:"lastTermination"`
}

// Event is an events.k8s.io Event about the Node or its NodeSubnet.
type Event struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	Reason   string    `json:"reason"`
	Object   string    `json:"object"`
	Reporter string    `json:"reporter"`
	Note     string    `json:"note"`
	Count    int32     `json:"count"`
}

// DriftNone is the diagnose drift line when no DriftRepaired Event about the node exists:
// the agent records every repair as one (agent/events.go), folded into a series.
const DriftNone = "nothing repaired recently (no DriftRepaired Event)"
