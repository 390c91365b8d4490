package hostnet

import "net/netip"

// State is everything ovsmesh wants on the host side of one node. The agent computes it as a
// pure function of the API objects (agent.Desired) and hands it to Apply.
type State struct {
	// Bridge is the Linux bridge the pods attach to (kbr0).
	Bridge Bridge
	// Veth links the Linux bridge to the OVS bridge.
	Veth VethPair
	// Route sends the whole cluster CIDR into the Linux bridge.
	Route Route
	// Masquerade SNATs pod traffic leaving the cluster CIDR.
	Masquerade Masquerade
}

// Bridge is a Linux bridge holding the node's pod gateway address.
type Bridge struct {
	Name string
	// Address is gateway/prefix, e.g. 10.244.3.1/24.
	Address netip.Prefix
	MTU     int
	// ClusterCIDR, when set, holds every gateway ovsmesh ever gives this bridge: on a bridge
	// that is ovsmesh's, an address inside it other than Address is the gateway of an
	// earlier subnet (the node left the mesh and came back with another one while the bridge
	// stayed) and is replaced. Outside it, or on a bridge ovsmesh does not own yet, any
	// other address is a conflict.
	ClusterCIDR netip.Prefix
}

// VethPair is the link between the Linux bridge and the OVS bridge.
//
// Why a veth pair and not obr0's internal port (the original design's "obr0 added as a port
// to kbr0"): the kernel owns both ends of a veth, so the link and its membership in kbr0 do
// not depend on what ovs-vswitchd does with its own devices, and the veth behaves the same
// with the system and netdev datapaths; its OVS end is an ordinary "system" port that
// ovs-vsctl shows plainly. The internal port would work too: with the userspace datapath it
// is a persistent tap that keeps its ifindex and its place in kbr0 when ovs-vswitchd is
// killed or exits without --cleanup (checked with OVS 3.1), and it was 6–10% faster pod to
// pod in BENCHMARKS.md section 5 (median of 4–6 runs, within the run-to-run spread), which
// is not yet worth migrating every node's data path for.
type VethPair struct {
	// Name is the end that becomes a port of the OVS bridge (vobr0).
	Name string
	// PeerName is the end enslaved to the Linux bridge (vkbr0).
	PeerName string
	// Master is the Linux bridge PeerName joins.
	Master string
	MTU    int
	// DisableOffloads turns checksum/TSO/GSO/GRO offloads off on both ends. The userspace
	// (netdev) datapath reads frames through AF_PACKET and cannot handle partial checksums or
	// 64 KiB GSO frames, which breaks TCP across tunnels.
	DisableOffloads bool
}

// Route is a directly connected route (scope link) for Dst through Dev.
type Route struct {
	Dst netip.Prefix
	Dev string
}

// Masquerade is the pod-to-outside SNAT rule.
type Masquerade struct {
	Enabled bool
	// ClusterCIDR: traffic from it to anywhere outside it is masqueraded.
	ClusterCIDR netip.Prefix
}

// Names identifies everything Cleanup removes.
type Names struct {
	Bridge   string
	Veth     string
	VethPeer string
	// RouteDst, when set, is the cluster route removed with the bridge.
	RouteDst netip.Prefix
}

// Underlay is the interface that carries the tunnels.
type Underlay struct {
	Name string
	MTU  int
	// Addr is the node address found on it.
	Addr netip.Addr
}
