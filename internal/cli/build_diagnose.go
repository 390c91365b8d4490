package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// DiagnoseInput is what gatherDiagnose read about one node. Subnet and Lease are nil when
// absent; a source that could not be read is named in Unreadable and its field left empty.
type DiagnoseInput struct {
	Node       string
	NodeFound  bool
	Cluster    *v1alpha1.NetworkCluster
	Subnet     *v1alpha1.NodeSubnet
	Subnets    []v1alpha1.NodeSubnet // every node's, for what the peers say about this one
	Lease      *coordinationv1.Lease
	LeaseRead  bool
	Pods       []corev1.Pod
	Events     []eventsv1.Event
	Unreadable []string
}

// MaxEvents is how many of the latest Events diagnose shows.
const MaxEvents = 10

// BuildDiagnose is the diagnose report for in at now.
func BuildDiagnose(in DiagnoseInput, now time.Time) DiagnoseReport {
	r := DiagnoseReport{Node: in.Node, NodeFound: in.NodeFound,
		UnhealthyPeers: []v1alpha1.PeerStatus{}, SeenByPeers: []PeerView{}, AgentPods: []PodInfo{},
		Events: []Event{}, Unreadable: append([]string{}, in.Unreadable...)}
	r.Heartbeat = Heartbeat{State: HeartbeatUnreadable}
	if in.LeaseRead {
		r.Heartbeat = heartbeat(in.Lease, now)
	}
	if ns := in.Subnet; ns != nil {
		r.SubnetFound = true
		r.CIDR, r.Gateway, r.NodeIP = ns.Spec.CIDR, ns.Spec.Gateway, ns.Spec.NodeIP
		if c := meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionReady); c != nil {
			cc := condition(*c)
			r.Ready = &cc
		}
		if c := meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionNodeIPConflict); c != nil {
			cc := condition(*c)
			r.NodeIPConflict = &cc
		}
		r.Tunnels, r.TunnelCount = ns.Status.Tunnels, ns.Status.TunnelCount
		r.UnhealthyPeers = append(r.UnhealthyPeers, ns.Status.UnhealthyPeers...)
	}
	r.OVSDB, r.Vswitchd = liveness(r.Ready, r.Heartbeat)
	r.MTU = mtuInfo(in.Cluster, in.Subnet)
	r.SeenByPeers = seenBy(in.Node, in.Subnets)
	r.AgentPods = pods(in.Pods)
	all := events(in.Events, in.Node)
	r.Drift = drift(all, now)
	r.Events = all[:min(len(all), MaxEvents)]
	return r
}

// drift summarises the agent's DriftRepaired Events about the node (all of them, not only
// the latest shown): how many repairs, and the latest one.
func drift(evs []Event, now time.Time) string {
	var n int32
	var latest *Event
	for i := range evs {
		if evs[i].Reason != eventDriftRepaired {
			continue
		}
		n += evs[i].Count
		if latest == nil {
			latest = &evs[i] // evs is newest first
		}
	}
	if latest == nil {
		return DriftNone
	}
	return fmt.Sprintf("%d repaired (Events %s); latest %s ago: %s", n, eventDriftRepaired, now.Sub(latest.Time).Round(time.Second), latest.Note)
}

// liveness reads the OVS daemons' state off the Ready reason: the agent's pass talks to
// ovsdb-server, then asks ovs-vswitchd to answer, and reports the first that fails. A reason
// from an earlier step (host side, config) says nothing about either.
func liveness(ready *Condition, hb Heartbeat) (ovsdb, vswitchd Liveness) {
	unknown := func(why string) Liveness { return Liveness{State: "unknown", Detail: why} }
	if ready == nil {
		return unknown("the agent has not reported"), unknown("the agent has not reported")
	}
	if hb.State == HeartbeatExpired {
		why := "the agent's heartbeat expired: its last report (" + ready.Reason + ") may be stale"
		return unknown(why), unknown(why)
	}
	ok := Liveness{State: "ok", Detail: "the agent's last pass reached it (Ready reason " + ready.Reason + ")"}
	switch ready.Reason {
	case v1alpha1.ReasonApplied, v1alpha1.ReasonSpanningTreeConverging, v1alpha1.ReasonTunnelsNotLive, v1alpha1.ReasonCNIConfigError:
		return ok, ok
	case v1alpha1.ReasonVswitchdUnavailable:
		return ok, Liveness{State: "unavailable", Detail: ready.Message}
	case v1alpha1.ReasonOVSUnavailable:
		return Liveness{State: "unavailable", Detail: ready.Message},
			unknown("not checked: the agent cannot reach ovsdb-server first")
	case v1alpha1.ReasonOVSError:
		return Liveness{State: "error", Detail: ready.Message}, unknown("not checked after the ovsdb-server error")
	}
	why := "not reached: the agent's pass stopped earlier (Ready reason " + ready.Reason + ")"
	return unknown(why), unknown(why)
}

// mtuInfo: the agent sets the MTU to the underlay's minus the tunnel overhead when spec.mtu
// is 0 (agent.Desired), so the underlay MTU is implied; with spec.mtu set the agent only
// checks it fits, so the underlay is at least MTU + overhead. The underlay MTU itself is not
// in the API.
func mtuInfo(nc *v1alpha1.NetworkCluster, ns *v1alpha1.NodeSubnet) MTUInfo {
	var m MTUInfo
	if ns != nil {
		m.InUse = ns.Status.MTU
	}
	if nc == nil {
		m.Note = "the NetworkCluster could not be read: tunnel type and overhead unknown"
		return m
	}
	m.SpecMTU = nc.Spec.MTU
	m.TunnelType, m.Overhead = string(v1alpha1.TunnelGRE), v1alpha1.OverheadGRE
	if nc.Spec.Tunnel.TypeOf() == v1alpha1.TunnelVXLAN {
		m.TunnelType, m.Overhead = string(v1alpha1.TunnelVXLAN), v1alpha1.OverheadVXLAN
	}
	switch {
	case m.InUse == 0:
		m.Note = "the agent has not reported an MTU"
		if r := readyOf(ns); r != nil && r.Reason == v1alpha1.ReasonInvalidConfig && strings.Contains(r.Message, "MTU") {
			m.Note += ": " + r.Message
		}
	case m.SpecMTU == 0:
		m.Underlay = m.InUse + m.Overhead
		m.UnderlayAtLeast = m.Underlay
		m.Note = fmt.Sprintf("spec.mtu is automatic: %d = underlay %d − %d (%s)", m.InUse, m.Underlay, m.Overhead, m.TunnelType)
	case m.InUse != m.SpecMTU:
		m.UnderlayAtLeast = m.InUse + m.Overhead
		m.Note = fmt.Sprintf("spec.mtu is %d but the node still uses %d: the agent has not applied the change (see Ready)", m.SpecMTU, m.InUse)
	default:
		m.UnderlayAtLeast = m.InUse + m.Overhead
		m.Note = fmt.Sprintf("spec.mtu %d + %d (%s) fits the underlay, whose MTU is not in the API: it is at least %d", m.InUse, m.Overhead, m.TunnelType, m.UnderlayAtLeast)
	}
	return m
}

func readyOf(ns *v1alpha1.NodeSubnet) *Condition {
	if ns == nil {
		return nil
	}
	if c := meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		cc := condition(*c)
		return &cc
	}
	return nil
}

// seenBy lists the other nodes that report a problem with their tunnel to node.
func seenBy(node string, subnets []v1alpha1.NodeSubnet) []PeerView {
	out := []PeerView{}
	for i := range subnets {
		if subnets[i].Name == node {
			continue
		}
		for _, p := range subnets[i].Status.UnhealthyPeers {
			if p.NodeName == node {
				out = append(out, PeerView{Node: subnets[i].Name, Reason: p.Reason, Message: p.Message})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func pods(in []corev1.Pod) []PodInfo {
	out := []PodInfo{}
	for i := range in {
		p := &in[i]
		pi := PodInfo{Name: p.Name, Phase: string(p.Status.Phase)}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				pi.Ready = c.Status == corev1.ConditionTrue
			}
		}
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			pi.Restarts += cs.RestartCount
			if t := cs.LastTerminationState.Terminated; t != nil {
				pi.LastTermination = fmt.Sprintf("%s: %s, exit code %d at %s", cs.Name, t.Reason, t.ExitCode, t.FinishedAt.UTC().Format(time.RFC3339))
			}
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// events keeps the Events regarding the Node or the NodeSubnet named node, the latest
// MaxEvents, newest first.
func events(in []eventsv1.Event, node string) []Event {
	out := []Event{}
	for i := range in {
		e := &in[i]
		if e.Regarding.Name != node || (e.Regarding.Kind != "Node" && e.Regarding.Kind != "NodeSubnet") {
			continue
		}
		ev := Event{Time: eventTime(e), Type: e.Type, Reason: e.Reason, Object: e.Regarding.Kind + "/" + e.Regarding.Name,
			Reporter: e.ReportingController, Note: e.Note, Count: 1}
		if e.Series != nil {
			ev.Count = e.Series.Count
		} else if e.DeprecatedCount > 0 {
			ev.Count = e.DeprecatedCount
		}
		if ev.Reporter == "" {
			ev.Reporter = e.DeprecatedSource.Component
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out
}

// eventTime is when e last happened: events.k8s.io and core Events (the kubelet's, read
// through events.k8s.io) fill different fields.
func eventTime(e *eventsv1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
