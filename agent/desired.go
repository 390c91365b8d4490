package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	cniconfig "github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/hostnet"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// NodeState is the whole desired state of one node: what Apply makes true.
type NodeState struct {
	NodeName    string
	NodeIP      netip.Addr
	Subnet      netip.Prefix
	Gateway     netip.Addr
	ClusterCIDR netip.Prefix
	// MTU of kbr0, the veth and every pod interface.
	MTU int

	Host hostnet.State
	OVS  OVSState
	CNI  cniconfig.Input // the conflist, in the plugin's own terms
}

// OVSState is the desired OVS bridge and tunnel mesh, in the ovs package's own terms.
type OVSState struct {
	// Bridge is the OVS bridge as OVS takes it (ovsBridgeSpec): datapath, loop prevention,
	// priority, timers and fail mode, written before any tunnel can close a loop.
	Bridge ovs.BridgeSpec
	// Protocol is the loop prevention in the API's terms: STP, RSTP or SplitHorizon, which
	// has no tree (Bridge.Protocol is empty) and protects the tunnels instead.
	Protocol v1alpha1.LoopPreventionProtocol
	// VethPort is the veth end plugged into the bridge (a system port).
	VethPort string
	// VethIfindex is the kernel ifindex of VethPort as the host has it now, and
	// VethRecreated says the host side made the veth anew in this pass (both set by the
	// Applier after the host side). ovs-vswitchd's userspace datapath keeps reading a
	// vanished device under the same name (and may even refresh the ifindex column from the
	// new one): the port is then plugged in again.
	VethIfindex   int
	VethRecreated bool

	// TunnelType ("gre" or "vxlan") and BFD are what every tunnel has, for the status
	// message, which must say it also when there is no peer.
	TunnelType string
	BFD        bool
	// Tunnels, one per peer, sorted by node name.
	Tunnels []ovs.TunnelSpec
	// Skipped are the NodeSubnets left out of the mesh: an address no tunnel can use, or one
	// another node (or this one) already has. Reported, never fatal to the others.
	Skipped []SkippedPeer
}

// SkippedPeer is a NodeSubnet left out of the mesh, and why (a v1alpha1.PeerReason...).
type SkippedPeer struct {
	NodeName, NodeIP, Reason, Message string
}

// Peer is another node of the mesh.
type Peer struct {
	NodeName string
	NodeIP   netip.Addr
}

// ErrNoSubnet means the operator has not yet given this node a NodeSubnet.
var ErrNoSubnet = errors.New("no NodeSubnet for this node yet")

// Desired computes the node state from the cluster spec, every NodeSubnet, this node's name
// and the MTU of its underlay interface. It is pure: no I/O, no clock, same inputs → same
// output, so the reconcile loop can re-derive everything after a restart and change nothing.
func Desired(spec v1alpha1.NetworkClusterSpec, subnets []v1alpha1.NodeSubnet, nodeName string, underlayMTU int) (NodeState, error) {
	var s NodeState
	s.NodeName = nodeName

	clusterCIDR, err := parsePrefix(spec.ClusterCIDROf())
	if err != nil {
		return s, fmt.Errorf("NetworkCluster clusterCIDR: %w", err)
	}
	s.ClusterCIDR = clusterCIDR

	own := findSubnet(subnets, nodeName)
	if own == nil {
		return s, ErrNoSubnet
	}
	if s.Subnet, err = parsePrefix(own.Spec.CIDR); err != nil {
		return s, fmt.Errorf("NodeSubnet %s cidr: %w", own.Name, err)
	}
	if s.Gateway, err = netip.ParseAddr(own.Spec.Gateway); err != nil || !s.Gateway.Is4() {
		return s, fmt.Errorf("NodeSubnet %s gateway %q is not an IPv4 address", own.Name, own.Spec.Gateway)
	}
	if !s.Subnet.Contains(s.Gateway) {
		return s, fmt.Errorf("NodeSubnet %s gateway %s is outside %s", own.Name, s.Gateway, s.Subnet)
	}
	if s.Subnet.Bits() <= 30 && (s.Gateway == s.Subnet.Addr() || s.Gateway == cniconfig.BroadcastAddr(s.Subnet)) {
		// Admission refuses the network address; the broadcast address it cannot compute.
		return s, fmt.Errorf("NodeSubnet %s gateway %s is the network or broadcast address of %s: pods could not use it", own.Name, s.Gateway, s.Subnet)
	}
	if !clusterCIDR.Contains(s.Subnet.Addr()) || s.Subnet.Bits() < clusterCIDR.Bits() {
		return s, fmt.Errorf("NodeSubnet %s cidr %s is outside the cluster CIDR %s", own.Name, s.Subnet, clusterCIDR)
	}
	if s.NodeIP, err = netip.ParseAddr(own.Spec.NodeIP); err != nil || !s.NodeIP.Is4() {
		return s, fmt.Errorf("NodeSubnet %s nodeIP %q is not an IPv4 address", own.Name, own.Spec.NodeIP)
	}

	tunnelType, overhead := strings.ToLower(string(spec.Tunnel.TypeOf())), spec.Tunnel.TypeOf().Overhead()
	s.MTU = int(spec.MTU)
	switch {
	case s.MTU == 0 && underlayMTU <= overhead:
		return s, fmt.Errorf("underlay MTU %d is too small for %s (overhead %d bytes)", underlayMTU, strings.ToUpper(tunnelType), overhead)
	case s.MTU == 0:
		s.MTU = underlayMTU - overhead
	case underlayMTU > 0 && s.MTU > underlayMTU-overhead: // 0: the underlay MTU is unknown
		// Full-size pod packets would not fit the underlay once encapsulated: dropped, or
		// fragmented by nobody (the outer header carries DF), while small ones pass.
		return s, fmt.Errorf("spec.mtu %d is larger than this node's underlay allows: %d (underlay) − %d (%s overhead) = %d; set spec.mtu to at most %d, or 0 for automatic",
			s.MTU, underlayMTU, overhead, strings.ToUpper(tunnelType), underlayMTU-overhead, underlayMTU-overhead)
	}

	ovsBridge, linuxBridge := spec.Bridges.OVSOf(), spec.Bridges.LinuxOf()
	vethOVS, vethLinux := VethNames(ovsBridge, linuxBridge)
	netdev := spec.DatapathTypeOf() == v1alpha1.DatapathNetdev

	s.Host = hostnet.State{
		Bridge: hostnet.Bridge{Name: linuxBridge, Address: netip.PrefixFrom(s.Gateway, s.Subnet.Bits()), MTU: s.MTU, ClusterCIDR: clusterCIDR},
		Veth: hostnet.VethPair{Name: vethOVS, PeerName: vethLinux, Master: linuxBridge, MTU: s.MTU,
			DisableOffloads: netdev},
		Route:      hostnet.Route{Dst: clusterCIDR, Dev: linuxBridge},
		Masquerade: hostnet.Masquerade{Enabled: spec.MasqueradeEnabled(), ClusterCIDR: clusterCIDR},
	}

	lp := spec.LoopPrevention
	s.OVS = OVSState{
		Bridge:     ovsBridgeSpec(ovsBridge, spec.DatapathTypeOf(), &lp),
		Protocol:   lp.ProtocolOf(),
		VethPort:   vethOVS,
		TunnelType: tunnelType,
		BFD:        spec.Tunnel.BFD,
	}
	var peerList []Peer
	peerList, s.OVS.Skipped = peers(subnets, own)
	// The route to the cluster CIDR goes to kbr0: were a node address inside it, the
	// tunnels to that node (and the node's own traffic) would be sent into the pod bridge.
	// Nothing is programmed; the operator reports the same as ClusterCIDRConflict.
	var inside []string
	if clusterCIDR.Contains(s.NodeIP) {
		inside = append(inside, fmt.Sprintf("this node (%s)", s.NodeIP))
	}
	for _, p := range peerList {
		if clusterCIDR.Contains(p.NodeIP) {
			inside = append(inside, fmt.Sprintf("%s (%s)", p.NodeName, p.NodeIP))
		}
	}
	if len(inside) > 0 {
		if len(inside) > 5 {
			inside = append(inside[:5], fmt.Sprintf("and %d more", len(inside)-5))
		}
		return s, fmt.Errorf("the cluster CIDR %s contains the node address of %s: its route via %s would capture the node network; nothing programmed",
			clusterCIDR, strings.Join(inside, ", "), linuxBridge)
	}
	dstPort := 0
	if tunnelType == "vxlan" {
		dstPort = spec.Tunnel.VXLANPortOf()
	}
	s.OVS.Tunnels = meshTunnels(peerList, tunnelType, spec.Tunnel.Key, dstPort, spec.Tunnel.BFD, s.OVS.Protocol)

	s.CNI = cniInput(linuxBridge, s.Subnet, s.Gateway, clusterCIDR, s.MTU)
	return s, nil
}

// ovsBridgeSpec is the OVS bridge for the loop prevention lp. The priority is always written:
// the API defaults it to 32768, so a 0 here was asked for (the most preferred root), not
// left out.
func ovsBridgeSpec(name string, datapath v1alpha1.DatapathType, lp *v1alpha1.LoopPreventionSpec) ovs.BridgeSpec {
	proto := string(lp.ProtocolOf())
	if !lp.ProtocolOf().SpanningTree() {
		proto = "" // split horizon: no tree, the tunnels are protected instead
	}
	prio := lp.PriorityOf()
	return ovs.BridgeSpec{
		Name: name, DatapathType: string(datapath), Protocol: proto,
		Priority: &prio, HelloTime: lp.HelloTimeOf(), MaxAge: lp.MaxAgeOf(), ForwardDelay: lp.ForwardDelayOf(),
		// standalone: obr0 is a plain learning switch with no controller; it also keeps
		// forwarding if anyone ever sets a controller that then goes away ("secure" would
		// drop everything the moment one did).
		FailMode: "standalone",
	}
}

// meshTunnels is one tunnel per peer, in the peers' order.
func meshTunnels(peers []Peer, tunnelType string, key *int64, dstPort int, bfd bool, proto v1alpha1.LoopPreventionProtocol) []ovs.TunnelSpec {
	out := make([]ovs.TunnelSpec, 0, len(peers))
	for _, p := range peers {
		out = append(out, ovs.TunnelSpec{
			PeerName: p.NodeName, RemoteIP: p.NodeIP.String(), Type: tunnelType,
			Key: key, DstPort: dstPort, BFD: bfd,
			// Under a spanning tree a port must not be protected: the tree's paths between
			// non-root nodes cross the root, through two of its tunnels. Without a tree,
			// protection is what stops a frame from one tunnel going out another.
			Protected: !proto.SpanningTree(),
		})
	}
	return out
}

// peers lists the tunnel endpoints: every other NodeSubnet that is not being torn down, sorted
// by node name, and those it leaves out. A node IP no tunnel can use (v1alpha1.UsableNodeIP),
// or one already taken by an earlier peer or by this node, is left out and reported: OVS
// refuses two tunnels with the same remote_ip and type, and one unusable address must not
// stop the tunnels to everyone else.
func peers(subnets []v1alpha1.NodeSubnet, own *v1alpha1.NodeSubnet) ([]Peer, []SkippedPeer) {
	sorted := make([]v1alpha1.NodeSubnet, len(subnets))
	copy(sorted, subnets)
	sort.Slice(sorted, func(i, j int) bool { return nodeNameOf(&sorted[i]) < nodeNameOf(&sorted[j]) })
	owner := map[netip.Addr]string{}
	if ip, err := netip.ParseAddr(own.Spec.NodeIP); err == nil {
		owner[ip] = "this node"
	}
	out := []Peer{}
	var skipped []SkippedPeer
	for i := range sorted {
		ns := &sorted[i]
		name := nodeNameOf(ns)
		if name == nodeNameOf(own) || ns.Spec.Teardown || ns.DeletionTimestamp != nil {
			continue
		}
		ip, err := netip.ParseAddr(ns.Spec.NodeIP)
		if err == nil {
			err = v1alpha1.UsableNodeIP(ip)
		}
		if err != nil {
			skipped = append(skipped, SkippedPeer{NodeName: name, NodeIP: ns.Spec.NodeIP, Reason: v1alpha1.PeerReasonUnusableAddress,
				Message: fmt.Sprintf("node IP %q cannot be a tunnel end: %v", ns.Spec.NodeIP, err)})
			continue
		}
		if first, taken := owner[ip]; taken {
			skipped = append(skipped, SkippedPeer{NodeName: name, NodeIP: ns.Spec.NodeIP, Reason: v1alpha1.PeerReasonDuplicateAddress,
				Message: fmt.Sprintf("node IP %s is also %s's: no tunnel to it until one of them changes", ip, first)})
			continue
		}
		owner[ip] = name
		out = append(out, Peer{NodeName: name, NodeIP: ip})
	}
	return out, skipped
}

// findSubnet returns this node's NodeSubnet (named after the node, spec.nodeName as fallback).
func findSubnet(subnets []v1alpha1.NodeSubnet, nodeName string) *v1alpha1.NodeSubnet {
	for i := range subnets {
		if subnets[i].Name == nodeName {
			return &subnets[i]
		}
	}
	for i := range subnets {
		if subnets[i].Spec.NodeName == nodeName {
			return &subnets[i]
		}
	}
	return nil
}

func nodeNameOf(ns *v1alpha1.NodeSubnet) string {
	if ns.Spec.NodeName != "" {
		return ns.Spec.NodeName
	}
	return ns.Name
}

// VethNames derives the two veth ends from the bridge names (v1alpha1.VethNames: the API
// contract, which admission and kubectl ovsmesh use too).
func VethNames(ovsBridge, linuxBridge string) (ovsEnd, linuxEnd string) {
	return v1alpha1.VethNames(ovsBridge, linuxBridge)
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if !p.Addr().Is4() {
		return p, fmt.Errorf("%s is not IPv4", s)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%s has host bits set", s)
	}
	return p, nil
}
