package cli

import (
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// StatusInput is what gatherStatus read. Leases is nil when they could not be read
// (LeasesErr says why), which is not the same as an empty list.
type StatusInput struct {
	Cluster    *v1alpha1.NetworkCluster // nil: not found or unreadable
	Subnets    []v1alpha1.NodeSubnet
	Leases     []coordinationv1.Lease
	LeasesRead bool
	Unreadable []string
}

// BuildStatus is the status report for in at now.
func BuildStatus(in StatusInput, now time.Time) StatusReport {
	r := StatusReport{Cluster: clusterSummary(in.Cluster), Unreadable: append([]string{}, in.Unreadable...)}
	beats := heartbeats(in.Leases, in.LeasesRead, now)
	subnets := append([]v1alpha1.NodeSubnet(nil), in.Subnets...)
	sort.Slice(subnets, func(i, j int) bool { return subnets[i].Name < subnets[j].Name })
	r.Nodes = make([]NodeRow, 0, len(subnets))
	for i := range subnets {
		r.Nodes = append(r.Nodes, nodeRow(&subnets[i], beats(subnets[i].Name)))
	}
	r.Matrix = BuildMatrix(r.Nodes, MatrixLimit)
	return r
}

func clusterSummary(nc *v1alpha1.NetworkCluster) ClusterSummary {
	s := ClusterSummary{Name: v1alpha1.NetworkClusterName, Conditions: []Condition{}}
	if nc == nil {
		return s
	}
	s.Found = true
	s.ClusterCIDR = nc.Spec.ClusterCIDROf()
	s.TunnelType = string(nc.Spec.Tunnel.TypeOf())
	s.Protocol = string(nc.Spec.LoopPrevention.ProtocolOf())
	s.SpecMTU = nc.Spec.MTU
	st := nc.Status
	s.NodesTotal, s.NodesReady, s.SubnetsUsed, s.SubnetsFree = st.NodesTotal, st.NodesReady, st.SubnetsUsed, st.SubnetsFree
	for _, c := range st.Conditions {
		s.Conditions = append(s.Conditions, condition(c))
	}
	return s
}

func condition(c metav1.Condition) Condition {
	return Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message,
		LastTransitionTime: c.LastTransitionTime.Time}
}

func nodeRow(ns *v1alpha1.NodeSubnet, hb Heartbeat) NodeRow {
	st := ns.Status
	row := NodeRow{Name: ns.Name, NodeIP: ns.Spec.NodeIP, CIDR: ns.Spec.CIDR, MTU: st.MTU,
		TunnelCount: st.TunnelCount, Tunnels: st.Tunnels, Heartbeat: hb,
		UnhealthyPeers: append([]v1alpha1.PeerStatus{}, st.UnhealthyPeers...)}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil {
		row.Ready, row.Reason, row.Message = string(c.Status), c.Reason, c.Message
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionNodeIPConflict); c != nil && c.Status == metav1.ConditionTrue {
		row.NodeIPConflict = c.Message
	}
	row.PeersKnown = peersKnown(row.Reason) && hb.State != HeartbeatExpired
	return row
}

// peersKnown: the Ready reasons under which the agent has just read its tunnels from OVS,
// so its unhealthyPeers are current. On any other reason the pass stopped before (host
// side, ovsdb-server) or the node is leaving, and the tunnel status is whatever an earlier
// pass left. An expired heartbeat makes them unknown too: nobody vouches for the status.
func peersKnown(reason string) bool {
	switch reason {
	case v1alpha1.ReasonApplied, v1alpha1.ReasonSpanningTreeConverging, v1alpha1.ReasonTunnelsNotLive:
		return true
	}
	return false
}

// heartbeats returns a lookup of each node's heartbeat at now. The Lease is matched by name,
// as the operator does (controllers/heartbeats.go), and must carry the heartbeat label.
func heartbeats(leases []coordinationv1.Lease, read bool, now time.Time) func(node string) Heartbeat {
	byName := map[string]*coordinationv1.Lease{}
	for i := range leases {
		if leases[i].Labels[v1alpha1.LabelHeartbeat] == "true" {
			byName[leases[i].Name] = &leases[i]
		}
	}
	return func(node string) Heartbeat {
		if !read {
			return Heartbeat{State: HeartbeatUnreadable}
		}
		return heartbeat(byName[v1alpha1.HeartbeatLeaseName(node)], now)
	}
}

// heartbeat is l's state at now; l nil is no heartbeat.
func heartbeat(l *coordinationv1.Lease, now time.Time) Heartbeat {
	if l == nil {
		return Heartbeat{State: HeartbeatNone}
	}
	hb := Heartbeat{State: HeartbeatExpired}
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return hb // never renewed: the operator counts it expired as well
	}
	renew := l.Spec.RenewTime.Time
	exp := renew.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	hb.RenewTime, hb.ExpiresAt = &renew, &exp
	hb.AgeSeconds = int64(now.Sub(renew) / time.Second)
	if now.Before(exp) {
		hb.State = HeartbeatLive
	}
	return hb
}
