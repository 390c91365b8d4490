package agent

import (
	"fmt"
	"sort"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// TunnelReport is the mesh as the node's OVS shows it, reduced to what the status carries:
// counts, and the peers that need attention. Per-peer detail for every peer is on the node
// (ovs-vsctl list Port, ovs-appctl stp/show, bfd/show), not in the API.
type TunnelReport struct {
	// Count is the number of ovsmesh tunnel ports on the bridge, which can differ from the
	// desired peers while a change is in flight.
	Count   int
	Summary v1alpha1.TunnelSummary
	// Unhealthy are the desired peers whose tunnel is missing, not live, converging or
	// down, sorted by node name (all of them; the status keeps the first few).
	Unhealthy []v1alpha1.PeerStatus
	// VethBlocked says why the veth port into the Linux bridge does not forward yet ("" when
	// it does). It is the pods' only way onto the mesh, and under STP and RSTP it goes
	// through the same listening/learning or discarding as a tunnel.
	VethBlocked string
}

// Ready reports whether every desired tunnel carries traffic or is held back by spanning
// tree on purpose, and the veth port forwards: what pods need to talk. BFD's view is
// reported, not required (a peer whose node is gone is that peer's problem, not this
// node's).
func (r TunnelReport) Ready() bool {
	return r.Summary.Converging == 0 && r.Summary.Missing == 0 && r.VethBlocked == ""
}

// tunnelReport classifies every desired tunnel from the port states OVS reports. Pure: the
// OVS side returns facts, the meaning (which states are stable under which protocol) is here.
func tunnelReport(s OVSState, ports []ovs.PortState) TunnelReport {
	var r TunnelReport
	byName := make(map[string]*ovs.PortState, len(ports))
	for i := range ports {
		p := &ports[i]
		byName[p.Name] = p
		if p.Owned && p.Peer != "" {
			r.Count++
		}
	}
	r.Summary.Desired = int32(len(s.Tunnels))
	switch v := byName[s.VethPort]; {
	case v == nil:
		r.VethBlocked = "not on " + s.Bridge.Name
	case !v.Live:
		r.VethBlocked = "not set up by ovs-vswitchd"
	case s.Protocol.SpanningTree():
		// Never protected; under a tree it must forward (blocking it would cut the pods off).
		if st, why := portTraffic(s.Protocol, v, false); st != trafficForwarding {
			r.VethBlocked = why
			if st == trafficBlocked {
				r.VethBlocked = "blocked by spanning tree"
			}
		}
	}
	for _, spec := range s.Tunnels {
		name := ovs.PortName(spec)
		ps := v1alpha1.PeerStatus{NodeName: spec.PeerName, NodeIP: spec.RemoteIP, Port: name, State: v1alpha1.PeerUnknown}
		p := byName[name]
		if p == nil {
			r.Summary.Missing++
			ps.Reason, ps.Message = v1alpha1.PeerReasonMissing, "no port "+name+" on "+s.Bridge.Name
			r.Unhealthy = append(r.Unhealthy, ps)
			continue
		}
		ps.STPState = p.STPState
		if p.RSTPState != "" {
			ps.STPState = p.RSTPState
		}
		if s.BFD {
			ps.State = bfdState(p.BFDState)
			switch ps.State {
			case v1alpha1.PeerUp:
				r.Summary.Up++
			case v1alpha1.PeerDown:
				r.Summary.Down++
			}
		}
		switch st, why := portTraffic(s.Protocol, p, ps.State == v1alpha1.PeerDown); {
		case !p.Live:
			r.Summary.Converging++
			ps.Reason, ps.Message = v1alpha1.PeerReasonNotLive, "ovs-vswitchd has not set the port up"
			if p.Error != "" {
				ps.Message = p.Error
			}
		case st == trafficForwarding:
			r.Summary.Live++
			r.Summary.Forwarding++
		case st == trafficBlocked:
			r.Summary.Live++
			r.Summary.Blocked++
		default:
			r.Summary.Live++
			r.Summary.Converging++
			ps.Reason, ps.Message, ps.STPState = v1alpha1.PeerReasonConverging, why, ""
		}
		if ps.Reason == "" && ps.State == v1alpha1.PeerDown {
			ps.Reason, ps.Message = v1alpha1.PeerReasonDown, "BFD: "+p.BFDState
		}
		if ps.Reason != "" {
			ps.Message = truncate(ps.Message, maxPeerMessage)
			r.Unhealthy = append(r.Unhealthy, ps)
		}
	}
	for _, k := range s.Skipped {
		r.Summary.Skipped++
		r.Unhealthy = append(r.Unhealthy, v1alpha1.PeerStatus{NodeName: k.NodeName, NodeIP: k.NodeIP, State: v1alpha1.PeerUnknown,
			Reason: k.Reason, Message: truncate(k.Message, maxPeerMessage)})
	}
	sort.Slice(r.Unhealthy, func(i, j int) bool { return r.Unhealthy[i].NodeName < r.Unhealthy[j].NodeName })
	return r
}

// maxPeerMessage is PeerStatus.Message's limit in the CRD.
const maxPeerMessage = 256

type traffic int

const (
	trafficConverging traffic = iota
	trafficForwarding
	trafficBlocked
)

// portTraffic says whether a live tunnel port carries traffic under the protocol, and if it
// does not yet, why. The reason names the protocol, not the port's passing state (listening,
// learning): a status that changed with every step of the tree would cost the API server a
// request per step per port; the state itself is on the node (ovs-appctl stp/show).
//
//   - Split horizon: the port forwards once it is protected (it is created protected; an
//     unprotected one is a leftover of a tree the next pass fixes).
//   - STP: forwarding; blocking is stable only in the alternate role (a root or designated
//     port that is blocking is on its way to listening); listening, learning, disabled and
//     no state yet are transitional.
//   - RSTP (capitalised states): Forwarding; Discarding is stable as Alternate or Backup,
//     and as Disabled when BFD says the peer is down (OVS's RSTP disables such a port: the
//     peer is gone, which is not this node's fault); Learning, and Discarding in any other
//     role, are transitional.
func portTraffic(proto v1alpha1.LoopPreventionProtocol, p *ovs.PortState, bfdDown bool) (traffic, string) {
	switch proto {
	case v1alpha1.ProtocolSplitHorizon:
		if p.Protected {
			return trafficForwarding, ""
		}
		return trafficConverging, "not protected yet (split horizon)"
	case v1alpha1.ProtocolRSTP:
		switch {
		case p.RSTPState == "Forwarding":
			return trafficForwarding, ""
		case p.RSTPState == "Discarding" && (p.RSTPRole == "Alternate" || p.RSTPRole == "Backup"):
			return trafficBlocked, ""
		case p.RSTPState == "Discarding" && p.RSTPRole == "Disabled" && bfdDown:
			return trafficBlocked, ""
		}
		return trafficConverging, "RSTP has not settled the port yet"
	}
	switch {
	case p.STPState == "forwarding":
		return trafficForwarding, ""
	case p.STPState == "blocking" && p.STPRole == "alternate":
		return trafficBlocked, ""
	}
	return trafficConverging, "STP has not settled the port yet"
}

func bfdState(s string) v1alpha1.PeerState {
	switch s {
	case "up":
		return v1alpha1.PeerUp
	case "down", "admin_down", "init":
		return v1alpha1.PeerDown
	}
	return v1alpha1.PeerUnknown
}

// checkTunnelLimit refuses a mesh larger than the protocol's port limit: OVS would add the
// ports beyond it with spanning tree off on them, and those forward everything — a loop.
// The caller leaves OVS as it is (existing ports keep working) and reports the reason.
func checkTunnelLimit(s OVSState) error {
	max := s.Protocol.MaxTunnels()
	if max == 0 || len(s.Tunnels) <= max {
		return nil
	}
	way := "SplitHorizon (no limit)"
	if rstp := v1alpha1.ProtocolRSTP.MaxTunnels(); len(s.Tunnels) <= rstp {
		way += fmt.Sprintf(" or RSTP (up to %d)", rstp)
	}
	return withReason(v1alpha1.ReasonSpanningTreeLimit, fmt.Errorf(
		"%d peers need %d tunnel ports on %s, but OVS runs %s on at most %d of them (the ports beyond would forward without it: a loop); OVS left as it is: set spec.loopPrevention.protocol to %s",
		len(s.Tunnels), len(s.Tunnels), s.Bridge.Name, s.Protocol, max, way))
}
