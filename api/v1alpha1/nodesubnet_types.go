package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeSubnetSpec is written by the operator: the node's share of the cluster CIDR.
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || !isIP(self.gateway) || cidr(self.cidr).containsIP(self.gateway)",message="gateway must be an address inside cidr"
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
}

// NodeSubnetStatus is written by the node's agent.
type NodeSubnetStatus struct {
	// ObservedGeneration is the generation of the NetworkCluster the agent last applied.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, CleanedUp.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// TunnelCount is the number of tunnel ports on the OVS bridge.
	// +optional
	TunnelCount int32 `json:"tunnelCount"`

	// Peers lists every tunnel and its state.
	// +listType=map
	// +listMapKey=nodeName
	// +optional
	Peers []PeerStatus `json:"peers,omitempty"`

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
