package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeSubnetSpec is written by the operator: the node's share of the cluster CIDR.
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !isIP(self.gateway) || cidr(self.cidr).containsIP(self.gateway)",message="gateway must be an address inside cidr"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !isIP(self.gateway) || cidr(self.cidr).prefixLength() >= 31 || self.gateway != string(cidr(self.cidr).ip())",message="gateway must not be the network address of cidr"
type NodeSubnetSpec struct {
	// NodeName is the Node this subnet belongs to; the NodeSubnet has the same name. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeName is immutable"
	NodeName string `json:"nodeName"`

	// CIDR is the node's pod subnet, for example 10.244.3.0/24. Immutable.
	// +kubebuilder:validation:MaxLength=18
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self).ip().family() == 4",message="cidr must be an IPv4 CIDR such as 10.244.3.0/24"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).masked() == cidr(self)",message="cidr must be a network address with no host bits set"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cidr is immutable: delete the NodeSubnet to reallocate"
	CIDR string `json:"cidr"`

	// Gateway is the address of the Linux bridge (kbr0): the first address of CIDR.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="gateway must be an IPv4 address"
	Gateway string `json:"gateway"`

	// NodeIP is the node's underlay (InternalIP) address: the remote end of tunnels to it.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="nodeIP must be an IPv4 address"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() != 4 || (!ip(self).isUnspecified() && !ip(self).isLoopback() && !cidr('224.0.0.0/4').containsIP(self) && self != '255.255.255.255')",message="nodeIP must be a unicast address a tunnel can reach: not 0.0.0.0, loopback, multicast or broadcast"
	NodeIP string `json:"nodeIP"`

	// Teardown is set by the operator when ovsmesh is being uninstalled: the agent removes
	// everything it created on the node and reports the CleanedUp condition.
	// +optional
	Teardown bool `json:"teardown,omitempty"`
}

// PeerState is the liveness of a tunnel to a peer.
// +kubebuilder:validation:Enum=Up;Down;Unknown
type PeerState string

const (
	PeerUp      PeerState = "Up"
	PeerDown    PeerState = "Down"
	PeerUnknown PeerState = "Unknown"
)

// Why a peer is listed in NodeSubnetStatus.UnhealthyPeers.
const (
	// PeerReasonMissing: the tunnel port is not on the bridge (its name is taken by a port
	// ovsmesh does not own, the spanning-tree limit guard held it back, or it is being made).
	PeerReasonMissing = "Missing"
	// PeerReasonNotLive: the port is in OVSDB but ovs-vswitchd has not (or could not) set
	// it up; see the interface's error column.
	PeerReasonNotLive = "NotLive"
	// PeerReasonConverging: spanning tree has not yet moved the port to a stable state.
	PeerReasonConverging = "Converging"
	// PeerReasonDown: BFD says the peer does not answer.
	PeerReasonDown = "Down"
	// PeerReasonUnusableAddress: the peer's node IP cannot be a tunnel end (0.0.0.0,
	// loopback, multicast, broadcast); it is left out of the mesh.
	PeerReasonUnusableAddress = "UnusableAddress"
	// PeerReasonDuplicateAddress: the peer's node IP is another node's (or this node's);
	// it is left out of the mesh until one of them changes.
	PeerReasonDuplicateAddress = "DuplicateAddress"
)

// MaxUnhealthyPeers bounds NodeSubnetStatus.UnhealthyPeers, so that a node's status does not
// grow with the cluster even when many peers are down at once.
const MaxUnhealthyPeers = 16

// PeerStatus is one tunnel of the mesh as seen from this node.
type PeerStatus struct {
	// NodeName of the peer.
	NodeName string `json:"nodeName"`
	// NodeIP is the peer's underlay address (options:remote_ip).
	NodeIP string `json:"nodeIP"`
	// Port is the OVS port name of the tunnel.
	Port string `json:"port"`
	// State is Up or Down from BFD when enabled, else Unknown.
	State PeerState `json:"state"`
	// STPState is the spanning-tree state of the tunnel port (forwarding, blocking, ...).
	// +optional
	STPState string `json:"stpState,omitempty"`
	// Reason says why the peer needs attention: Missing, NotLive, Converging, Down,
	// UnusableAddress or DuplicateAddress.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is the detail: the OVS interface error, the name conflict, the limit.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Message string `json:"message,omitempty"`
}

// TunnelSummary counts this node's tunnels by state. Counts, not a list: the status of every
// node is watched by every agent and the operator, so its size must not depend on the size
// of the cluster. Per-peer detail is on the node (ovs-vsctl list Port, ovs-appctl bfd/show).
//
// The fields are optional without omitempty, like tunnelCount: a zero is written out, and a
// merge patch that carries only the counts that changed still makes a valid object.
type TunnelSummary struct {
	// Desired is the number of peers this node should have a tunnel to.
	// +optional
	Desired int32 `json:"desired"`
	// Live is the number of desired tunnels ovs-vswitchd has set up.
	// +optional
	Live int32 `json:"live"`
	// Forwarding is the number of live tunnels that carry traffic: all of them under
	// SplitHorizon, those spanning tree moved to forwarding under STP or RSTP.
	// +optional
	Forwarding int32 `json:"forwarding"`
	// Blocked is the number of tunnels spanning tree keeps from forwarding to break the
	// loop (STP blocking, RSTP discarding as alternate or backup): stable, not a fault.
	// +optional
	Blocked int32 `json:"blocked"`
	// Converging is the number of tunnels that spanning tree has not yet moved to a stable
	// state, or that ovs-vswitchd has not set up yet.
	// +optional
	Converging int32 `json:"converging"`
	// Missing is the number of desired tunnels that are not on the bridge.
	// +optional
	Missing int32 `json:"missing"`
	// Skipped is the number of peers left out of the mesh: an address no tunnel can use, or
	// one another node already has (listed in unhealthyPeers). They do not hold Ready back.
	// +optional
	Skipped int32 `json:"skipped"`
	// Up and Down count the peers BFD reports alive and not answering (both 0 without BFD).
	// +optional
	Up int32 `json:"up"`
	// +optional
	Down int32 `json:"down"`
}

// NodeSubnetStatus is written by the node's agent.
type NodeSubnetStatus struct {
	// ObservedGeneration is the generation of the NetworkCluster the agent last applied.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, CleanedUp (the agent's); NodeIPConflict (the operator's).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// TunnelCount is the number of ovsmesh tunnel ports on the OVS bridge.
	// +optional
	TunnelCount int32 `json:"tunnelCount"`

	// Tunnels counts the desired tunnels by state.
	// +optional
	Tunnels TunnelSummary `json:"tunnels,omitempty"`

	// UnhealthyPeers lists the peers that need attention (missing, not live, converging,
	// down, or left out for their address), sorted by node name, at most 16; Tunnels has the
	// full counts. Empty when every tunnel is fine.
	// +listType=map
	// +listMapKey=nodeName
	// +kubebuilder:validation:MaxItems=16
	// +optional
	UnhealthyPeers []PeerStatus `json:"unhealthyPeers,omitempty"`

	// MTU in use on the Linux bridge and written to the CNI config.
	// +optional
	MTU int32 `json:"mtu,omitempty"`
}

// NodeSubnet is one node's pod subnet and the state of its agent. It is named after the node.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=nsub
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.nodeName",message="a NodeSubnet must be named after its node: metadata.name must equal spec.nodeName"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=`.spec.cidr`
// +kubebuilder:printcolumn:name="Node IP",type=string,JSONPath=`.spec.nodeIP`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Tunnels",type=integer,JSONPath=`.status.tunnelCount`
// +kubebuilder:printcolumn:name="Forwarding",type=integer,JSONPath=`.status.tunnels.forwarding`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeSubnet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NodeSubnetSpec `json:"spec"`
	// +optional
	Status NodeSubnetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NodeSubnetList contains a list of NodeSubnet.
type NodeSubnetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeSubnet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NodeSubnet{}, &NodeSubnetList{})
}
