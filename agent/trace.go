package agent

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/ovsmesh/ovsmesh/internal/ipmac"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// Tracing a pod-to-pod packet through one node's OVS bridge (`ovsmesh-agent trace`, run by
// `kubectl ovsmesh trace` in the agent pod). The packet ofproto/trace simulates is the one
// the host sends: routed by the source node's kernel out of the Linux bridge, so its source
// MAC is that bridge's (derived from the gateway, internal/ipmac) and its destination MAC the
// destination pod's (the CNI plugin derives it from the pod's address the same way). On the
// source node it enters obr0 from the veth; on a later node from the tunnel of the node it
// came from.

// TraceRequest says which packet to trace on this node.
type TraceRequest struct {
	OVSBridge, LinuxBridge string
	Tunnel                 string // gre or vxlan
	SrcIP, DstIP           netip.Addr
	SrcGateway             netip.Addr // the source node's pod gateway (its Linux bridge's address)
	// FromNodeIP is the underlay address of the node the packet comes from through a
	// tunnel; invalid for a packet of a pod on this node. NodeIP is this node's.
	FromNodeIP, NodeIP netip.Addr
}

// TraceResult is what obr0 does with the packet.
type TraceResult struct {
	Node    string   `json:"node,omitempty"`
	InPort  string   `json:"inPort"`
	Flow    string   `json:"flow"`
	Learned bool     `json:"learned"` // the destination MAC was learned (unicast), not flooded
	Flooded bool     `json:"flooded"`
	Dropped bool     `json:"dropped"`
	Tunnels []string `json:"tunnels"` // remote underlay addresses the packet is sent to
	Local   []string `json:"local"`   // other ports it leaves by (the veth to the Linux bridge)
	Notes   []string `json:"notes"`   // ovs-vswitchd's ">>" remarks (e.g. native tunnel routing failed)
	Raw     string   `json:"raw"`
}

// TraceFlow is the ofproto/trace flow for r, and the port it enters by.
func TraceFlow(r TraceRequest) (inPort, flow string, err error) {
	if !r.SrcIP.Is4() || !r.DstIP.Is4() || !r.SrcGateway.Is4() {
		return "", "", fmt.Errorf("trace: source, destination and source gateway must be IPv4 addresses")
	}
	fields := []string{}
	if r.FromNodeIP.IsValid() {
		inPort = ovs.PortName(ovs.TunnelSpec{Type: r.Tunnel, RemoteIP: r.FromNodeIP.String()})
		if inPort == "" || !r.NodeIP.Is4() {
			return "", "", fmt.Errorf("trace: a packet from a tunnel needs --tunnel gre|vxlan and both nodes' IPv4 addresses")
		}
		fields = append(fields, "in_port="+inPort, "tun_src="+r.FromNodeIP.String(), "tun_dst="+r.NodeIP.String())
	} else {
		inPort, _ = VethNames(r.OVSBridge, r.LinuxBridge)
		fields = append(fields, "in_port="+inPort)
	}
	fields = append(fields, "dl_src="+ipmac.FromIPv4(r.SrcGateway).String(), "dl_dst="+ipmac.FromIPv4(r.DstIP).String(),
		"ip", "nw_src="+r.SrcIP.String(), "nw_dst="+r.DstIP.String(), "nw_ttl=63")
	return inPort, strings.Join(fields, ","), nil
}

var (
	tnlDst = regexp.MustCompile(`tnl_push\(.*?ipv4\(src=[0-9.]+,dst=([0-9.]+)`)
	digits = regexp.MustCompile(`^\d+$`)
)

// ParseTrace reads ofproto/trace's report (out) with the bridge's datapath ports (dp): pure.
func ParseTrace(out string, dp map[int]string) TraceResult {
	r := TraceResult{Raw: out, Tunnels: []string{}, Local: []string{}, Notes: []string{}}
	actions := ""
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.Contains(t, "no learned MAC for destination, flooding"):
			r.Flooded = true
		case strings.Contains(t, "forwarding to learned port"):
			r.Learned = true
		case strings.HasPrefix(t, ">>"):
			r.Notes = append(r.Notes, strings.TrimSpace(strings.TrimPrefix(t, ">>")))
		case strings.HasPrefix(t, "Datapath actions:"):
			actions = strings.TrimSpace(strings.TrimPrefix(t, "Datapath actions:"))
		}
	}
	if actions == "" || actions == "drop" {
		r.Dropped = true
		return r
	}
	for _, m := range tnlDst.FindAllStringSubmatch(actions, -1) {
		r.Tunnels = append(r.Tunnels, m[1])
	}
	for _, a := range topLevel(actions) {
		if digits.MatchString(a) {
			n, _ := strconv.Atoi(a)
			name := dp[n]
			if name == "" {
				name = "datapath port " + a
			}
			r.Local = append(r.Local, name)
		}
	}
	r.Dropped = len(r.Tunnels) == 0 && len(r.Local) == 0
	return r
}

// topLevel splits a datapath action list at the commas outside parentheses.
func topLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}
