package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NetworkClusterName is the only name a NetworkCluster may have: the configuration is a
// singleton, and a fixed name lets the API server itself (not a webhook) enforce that.
const NetworkClusterName = "default"

// TunnelType is the encapsulation used between the nodes' OVS bridges.
// +kubebuilder:validation:Enum=GRE;VXLAN
type TunnelType string

const (
	TunnelGRE   TunnelType = "GRE"
	TunnelVXLAN TunnelType = "VXLAN"
)

// LoopPreventionProtocol is how the OVS bridges keep the full mesh of tunnels, which is a
// loop, from circulating broadcasts forever.
//
//   - STP (the original design) and RSTP run a spanning tree over the mesh: one tree for the
//     whole cluster, so traffic between two non-root nodes crosses the root node, a new
//     port waits 2 × forwardDelay (STP) or a few seconds (RSTP) before it forwards, and OVS
//     runs the protocol on a bounded number of ports (see MaxTunnels). Right for a partial
//     mesh, where some pairs need transit.
//   - SplitHorizon turns the tree off and makes every tunnel port an OVS protected port: a
//     frame that came in on a tunnel never leaves through another tunnel. In a full mesh
//     every node is one tunnel from every other, so nothing needs transit and no loop can
//     form: every pair talks directly, a new port forwards at once, and a node's failure
//     only affects traffic to that node. The name is the routing term for the same rule
//     (never send a route back out where it came from), and says what it is not: no tree.
//
// +kubebuilder:validation:Enum=STP;RSTP;SplitHorizon
type LoopPreventionProtocol string

const (
	ProtocolSTP          LoopPreventionProtocol = "STP"
	ProtocolRSTP         LoopPreventionProtocol = "RSTP"
	ProtocolSplitHorizon LoopPreventionProtocol = "SplitHorizon"
)

// Spanning-tree port limits of OVS (lib/stp.h STP_MAX_PORTS, lib/rstp.h RSTP_MAX_PORTS).
// ovs-vswitchd numbers the bridge's non-internal ports and adds every port beyond the limit
// with the protocol disabled on it: such a port forwards everything, so a mesh larger than
// the limit is a broadcast loop. The veth into the Linux bridge is one of those ports.
const (
	stpMaxPorts  = 255
	rstpMaxPorts = 4095
)

// MaxTunnels is the largest number of tunnel ports (peers) one bridge can have under the
// protocol without a loop: the protocol's port limit less the veth port. 0 means no limit
// (SplitHorizon needs no per-port protocol state). An empty protocol is the default, STP.
func (p LoopPreventionProtocol) MaxTunnels() int {
	switch p {
	case ProtocolSplitHorizon:
		return 0
	case ProtocolRSTP:
		return rstpMaxPorts - 1
	}
	return stpMaxPorts - 1
}

// SpanningTree reports whether the protocol runs a spanning tree (STP, RSTP, or empty,
// which defaults to STP).
func (p LoopPreventionProtocol) SpanningTree() bool { return p != ProtocolSplitHorizon }

// DatapathType is the OVS datapath of the bridge: "system" (kernel module) on real nodes,
// "netdev" (userspace) where the kernel has no OVS module.
// +kubebuilder:validation:Enum=system;netdev
type DatapathType string

const (
	DatapathSystem DatapathType = "system"
	DatapathNetdev DatapathType = "netdev"
)

// TunnelSpec configures the encapsulation of the mesh.
// +kubebuilder:validation:XValidation:rule="self.type != 'VXLAN' || !has(self.key) || self.key <= 16777215",message="tunnel.key must be at most 16777215 for VXLAN (the VNI is 24 bits)"
type TunnelSpec struct {
	// Type is GRE or VXLAN. It may be changed on a live cluster: agents replace the tunnel
	// ports in one OVSDB transaction without recreating the bridges.
	// +kubebuilder:default=GRE
	// +optional
	Type TunnelType `json:"type,omitempty"`

	// VXLANPort is the UDP destination port of VXLAN tunnels (options:dst_port).
	// +kubebuilder:default=4789
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	VXLANPort int32 `json:"vxlanPort,omitempty"`

	// Key is the GRE key or VXLAN VNI (options:key). Unset means 0 (no key for GRE).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	Key *int64 `json:"key,omitempty"`

	// BFD enables Bidirectional Forwarding Detection on every tunnel so that each peer's
	// liveness is reported in NodeSubnet status.
	// +optional
	BFD bool `json:"bfd,omitempty"`
}

// LoopPreventionSpec configures how the mesh is kept loop-free. Priority and timers apply to
// STP and RSTP (SplitHorizon has none); they are in seconds and must satisfy 802.1D:
// 2*(forwardDelay-1) >= maxAge >= 2*(helloTime+1).
// +kubebuilder:validation:XValidation:rule="2 * (self.forwardDelay - 1) >= self.maxAge",message="loopPrevention: maxAge must be at most 2*(forwardDelay-1) seconds (IEEE 802.1D)"
// +kubebuilder:validation:XValidation:rule="self.maxAge >= 2 * (self.helloTime + 1)",message="loopPrevention: maxAge must be at least 2*(helloTime+1) seconds (IEEE 802.1D)"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'RSTP' || (self.priority % 4096 == 0 && self.priority <= 61440)",message="loopPrevention.priority must be a multiple of 4096 between 0 and 61440 for RSTP"
type LoopPreventionSpec struct {
	// Protocol is STP (the default, as in the original design), RSTP (converges in seconds)
	// or SplitHorizon (no tree: every pair of nodes talks directly over its own tunnel). It
	// may be changed on a live cluster; agents switch in an order that never forms a loop.
	// +kubebuilder:default=STP
	// +optional
	Protocol LoopPreventionProtocol `json:"protocol,omitempty"`

	// Priority is the bridge priority (other_config:stp-priority / rstp-priority).
	// +kubebuilder:default=32768
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// HelloTime in seconds (OVS accepts 1-10).
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +optional
	HelloTime int32 `json:"helloTime,omitempty"`

	// MaxAge in seconds (OVS accepts 6-40).
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=6
	// +kubebuilder:validation:Maximum=40
	// +optional
	MaxAge int32 `json:"maxAge,omitempty"`

	// ForwardDelay in seconds (OVS accepts 4-30).
	// +kubebuilder:default=15
	// +kubebuilder:validation:Minimum=4
	// +kubebuilder:validation:Maximum=30
	// +optional
	ForwardDelay int32 `json:"forwardDelay,omitempty"`
}

// BridgeNames are the names of the two bridges on every node. Linux interface names are at
// most 15 characters. They are immutable: a rename on a live cluster would cut every pod
// attached to the old bridge off; delete the NetworkCluster (which removes the bridges from
// every node) and create it again with the new names.
//
// Besides the two names, ovsmesh makes a veth pair named "v" + each bridge name (cut to 15
// characters): neither bridge may be named like the other's veth end.
// +kubebuilder:validation:XValidation:rule="!has(self.ovs) || !has(self.linux) || (self.linux != (size(self.ovs) >= 15 ? ('v' + self.ovs).substring(0, 15) : 'v' + self.ovs) && self.ovs != (size(self.linux) >= 15 ? ('v' + self.linux).substring(0, 15) : 'v' + self.linux))",message="bridges: a bridge may not be named \"v\" + the other bridge's name: ovsmesh names its veth pair that way"
type BridgeNames struct {
	// OVS is the Open vSwitch bridge that carries the tunnels. Immutable.
	// +kubebuilder:default=obr0
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_.-]{1,15}$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['.', '..', 'all', 'default', 'lo', 'ovs-system', 'ovs-netdev'])",message="bridges.ovs may not be '.', '..', 'all', 'default' (the kernel or its sysctl tree reserve them), 'lo', 'ovs-system' or 'ovs-netdev' (devices every node already has)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="bridges.ovs is immutable: a rename would cut the pods off; delete the NetworkCluster (that removes the bridges from every node) and create it with the new name"
	// +optional
	OVS string `json:"ovs,omitempty"`

	// Linux is the Linux bridge the pods attach to; it holds the node's gateway address.
	// Immutable.
	// +kubebuilder:default=kbr0
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_.-]{1,15}$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['.', '..', 'all', 'default', 'lo', 'ovs-system', 'ovs-netdev'])",message="bridges.linux may not be '.', '..', 'all', 'default' (the kernel or its sysctl tree reserve them), 'lo', 'ovs-system' or 'ovs-netdev' (devices every node already has)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="bridges.linux is immutable: a rename would cut the pods off; delete the NetworkCluster (that removes the bridges from every node) and create it with the new name"
	// +optional
	Linux string `json:"linux,omitempty"`
}

// NetworkClusterSpec is the whole configuration of the ovsmesh pod network.
// +kubebuilder:validation:XValidation:rule="!has(self.clusterCIDR) || !has(self.nodeSubnetPrefixLength) || !isCIDR(self.clusterCIDR) || self.nodeSubnetPrefixLength > cidr(self.clusterCIDR).prefixLength()",message="nodeSubnetPrefixLength must be longer than the prefix of clusterCIDR (for a /16, use 17-30)"
// +kubebuilder:validation:XValidation:rule="!has(self.bridges) || !has(self.bridges.ovs) || !has(self.bridges.linux) || self.bridges.ovs != self.bridges.linux",message="bridges.ovs and bridges.linux must be different names"
type NetworkClusterSpec struct {
	// ClusterCIDR is the IPv4 range all pod subnets are carved from. Immutable.
	// +kubebuilder:default="10.244.0.0/16"
	// +kubebuilder:validation:MaxLength=18
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="clusterCIDR must be an IPv4 CIDR such as 10.244.0.0/16"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() == 4",message="clusterCIDR must be IPv4 (IPv6 is not supported yet)"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).masked() == cidr(self)",message="clusterCIDR must be a network address with no host bits set (for example 10.244.0.0/16, not 10.244.1.0/16)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clusterCIDR is immutable: delete and recreate the NetworkCluster to change it"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || cidr(self).prefixLength() >= 8",message="clusterCIDR must be a /8 or longer: a wider prefix would route the node's own networks into the pod bridge"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || !(cidr('0.0.0.0/8').containsCIDR(cidr(self)) || cidr(self).containsCIDR('0.0.0.0/8'))",message="clusterCIDR must not overlap 0.0.0.0/8 (\"this network\", RFC 791)"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || !(cidr('127.0.0.0/8').containsCIDR(cidr(self)) || cidr(self).containsCIDR('127.0.0.0/8'))",message="clusterCIDR must not overlap 127.0.0.0/8 (loopback)"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || !(cidr('169.254.0.0/16').containsCIDR(cidr(self)) || cidr(self).containsCIDR('169.254.0.0/16'))",message="clusterCIDR must not overlap 169.254.0.0/16 (link-local: cloud metadata and node-local DNS live there)"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || !(cidr('224.0.0.0/4').containsCIDR(cidr(self)) || cidr(self).containsCIDR('224.0.0.0/4'))",message="clusterCIDR must not overlap 224.0.0.0/4 (multicast)"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || !(cidr('240.0.0.0/4').containsCIDR(cidr(self)) || cidr(self).containsCIDR('240.0.0.0/4'))",message="clusterCIDR must not overlap 240.0.0.0/4 (reserved, and the broadcast address)"
	// +optional
	ClusterCIDR string `json:"clusterCIDR,omitempty"`

	// NodeSubnetPrefixLength is the prefix length of each node's subnet. Immutable.
	// +kubebuilder:default=24
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=30
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeSubnetPrefixLength is immutable: delete and recreate the NetworkCluster to change it"
	// +optional
	NodeSubnetPrefixLength int32 `json:"nodeSubnetPrefixLength,omitempty"`

	// Tunnel configures the GRE or VXLAN mesh.
	// +kubebuilder:default={}
	// +optional
	Tunnel TunnelSpec `json:"tunnel,omitempty"`

	// LoopPrevention configures STP, RSTP or split horizon on the OVS bridge.
	// The default is spelled out in full because the API server checks the timer rules
	// against the default object itself.
	// +kubebuilder:default={protocol:STP,priority:32768,helloTime:2,maxAge:20,forwardDelay:15}
	// +optional
	LoopPrevention LoopPreventionSpec `json:"loopPrevention,omitempty"`

	// Bridges names the OVS and Linux bridges.
	// +kubebuilder:default={}
	// +optional
	Bridges BridgeNames `json:"bridges,omitempty"`

	// MTU of the pod network. 0 means automatic: the underlay MTU minus the tunnel overhead
	// (GRE 42 bytes, VXLAN 50 bytes).
	// +kubebuilder:default=0
	// +kubebuilder:validation:XValidation:rule="self == 0 || (self >= 576 && self <= 9000)",message="mtu must be 0 (automatic) or between 576 and 9000"
	// +optional
	MTU int32 `json:"mtu,omitempty"`

	// Masquerade SNATs pod traffic leaving the cluster CIDR to the node's address.
	// +kubebuilder:default=true
	// +optional
	Masquerade *bool `json:"masquerade,omitempty"`

	// DatapathType of the OVS bridge: system (kernel) or netdev (userspace).
	// +kubebuilder:default=system
	// +optional
	DatapathType DatapathType `json:"datapathType,omitempty"`

	// NodeSelector limits the nodes that join the mesh. Empty selects every node.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// AgentImage is the container image of the node agent DaemonSet.
	// +kubebuilder:default="ghcr.io/ovsmesh/ovsmesh-agent:v0.1.0"
	// +optional
	AgentImage string `json:"agentImage,omitempty"`
}

// NetworkClusterStatus is written by the operator.
type NetworkClusterStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Available, Progressing, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// NodesTotal is the number of selected nodes.
	// +optional
	NodesTotal int32 `json:"nodesTotal"`

	// NodesReady is the number of nodes whose agent reports Ready for the current generation.
	// +optional
	NodesReady int32 `json:"nodesReady"`

	// SubnetsUsed is the number of node subnets allocated.
	// +optional
	SubnetsUsed int32 `json:"subnetsUsed"`

	// SubnetsFree is the number of node subnets still available in the cluster CIDR.
	// +optional
	SubnetsFree int32 `json:"subnetsFree"`
}

// NetworkCluster is the configuration of the ovsmesh pod network. There is one per cluster,
// named "default".
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ncl
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="there is one NetworkCluster per cluster and it must be named 'default'"
// +kubebuilder:printcolumn:name="Tunnel",type=string,JSONPath=`.spec.tunnel.type`
// +kubebuilder:printcolumn:name="Cluster CIDR",type=string,JSONPath=`.spec.clusterCIDR`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.nodesReady`
// +kubebuilder:printcolumn:name="Nodes",type=integer,JSONPath=`.status.nodesTotal`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NetworkCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// The defaulted spec makes `kubectl apply` of a bare NetworkCluster a complete install.
	// +kubebuilder:default={}
	// +optional
	Spec NetworkClusterSpec `json:"spec,omitempty"`
	// +optional
	Status NetworkClusterStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NetworkClusterList contains a list of NetworkCluster.
type NetworkClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NetworkCluster{}, &NetworkClusterList{})
}
