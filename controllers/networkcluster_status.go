package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Condition reasons of the NetworkCluster.
const (
	ReasonAllNodesReady          = "AllNodesReady"
	ReasonNodesNotReady          = "NodesNotReady"
	ReasonNoNodes                = "NoNodes"
	ReasonInvalidSpec            = "InvalidSpec"
	ReasonAgentDeployFailed      = "AgentDeploymentFailed"
	ReasonAllocatingSubnets      = "AllocatingSubnets"
	ReasonRollingOut             = "RollingOut"
	ReasonWaitingForAgents       = "WaitingForAgents"
	ReasonWaitingForNodeAddress  = "WaitingForNodeAddress"
	ReasonAsExpected             = "AsExpected"
	ReasonUninstalling           = "Uninstalling"
	ReasonSpanningTreeConverging = v1alpha1.ReasonSpanningTreeConverging
	ReasonSpanningTreeLimit      = v1alpha1.ReasonSpanningTreeLimit
	// ReasonClusterCIDRConflict: the cluster CIDR holds a node's own address, so the route
	// to it (dev kbr0) would capture the node network's traffic.
	ReasonClusterCIDRConflict = "ClusterCIDRConflict"
	// ReasonDuplicateNodeIP: two selected Nodes report the same InternalIP; neither can
	// have a tunnel to it that means one node.
	ReasonDuplicateNodeIP = "DuplicateNodeIP"
	// ReasonSubnetsExhausted (shared with the IPAM event) is in ipam_reconciler.go.
)

// statusInput is what the NetworkCluster status is computed from.
type statusInput struct {
	Generation int64
	// Protocol is the loop prevention of the spec (its MaxTunnels bounds the mesh).
	Protocol v1alpha1.LoopPreventionProtocol
	Pool     *Pool // nil when the spec cannot be turned into a pool (PoolErr)
	PoolErr  error
	Selector labels.Selector
	Nodes    []corev1.Node
	Subnets  []v1alpha1.NodeSubnet
	// ServiceCIDRs are the cluster's Service CIDRs (servicecidr.go); nil when not served.
	ServiceCIDRs []namedPrefix
	ApplyErr     error // the agent objects could not be applied
	Deleting     bool
	// CleanupPending are the nodes whose agent has not reported CleanedUp (when Deleting).
	CleanupPending []string
	// Heartbeats: when each node's agent heartbeat expires (heartbeats.go); a node without
	// one is judged by its NodeSubnet alone.
	Heartbeats map[string]time.Time
}

// subnetReady: the agent reports Ready for the current generation of the NetworkCluster.
func subnetReady(s *v1alpha1.NodeSubnet, generation int64) bool {
	return isTrue(s.Status.Conditions, v1alpha1.ConditionReady) && s.Status.ObservedGeneration == generation
}

// computeStatus is the NetworkCluster status as a pure function of the observed world. prev is
// the current status: conditions keep their lastTransitionTime while their status holds.
//
//   - nodesTotal: selected nodes; nodesReady: those whose agent reports Ready=True for this
//     generation and whose heartbeat has not expired; subnetsUsed/Free: NodeSubnets in the
//     cluster CIDR and what is left.
//   - Available: every selected node's agent reports Ready (for any generation: while a spec
//     change rolls out the old configuration still carries traffic; Progressing says so).
//   - Progressing: something is on its way: subnets being allocated, agents applying the
//     current generation or not reporting yet, uninstall.
//   - Degraded: something needs a person: invalid spec, the agent objects cannot be applied,
//     the cluster CIDR is exhausted, agents stopped renewing their heartbeat
//     (AgentNotReporting), or agents report Ready=False.
func computeStatus(in statusInput, prev v1alpha1.NetworkClusterStatus, now metav1.Time) v1alpha1.NetworkClusterStatus {
	st := v1alpha1.NetworkClusterStatus{ObservedGeneration: in.Generation}
	st.Conditions = append([]metav1.Condition(nil), prev.Conditions...)
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: in.Generation, LastTransitionTime: now,
		})
	}

	subnetOf := map[string]*v1alpha1.NodeSubnet{}
	used := map[int]bool{}
	for i := range in.Subnets {
		s := &in.Subnets[i]
		subnetOf[s.Name] = s
		if in.Pool != nil {
			if idx, ok := in.Pool.ParseIndex(s.Spec.CIDR); ok {
				used[idx] = true
			}
		}
	}
	var (
		total, ready, up                        int
		noSubnet, noAddress, stale, notReported []string
		failing, converging, silent             []string
	)
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if in.Selector == nil || !nodeInMesh(n, in.Selector) {
			continue
		}
		total++
		s := subnetOf[n.Name]
		switch {
		case s == nil:
			if _, ok := internalIPv4(n); ok {
				noSubnet = append(noSubnet, n.Name)
			} else {
				noAddress = append(noAddress, n.Name)
			}
			continue
		case heartbeatExpired(in.Heartbeats, n.Name, now.Time):
			// What the agent last reported no longer holds: it stopped renewing.
			silent = append(silent, n.Name)
			continue
		case subnetReady(s, in.Generation):
			ready++
		}
		c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case c == nil:
			notReported = append(notReported, n.Name)
		case c.Status == metav1.ConditionTrue:
			up++
			if s.Status.ObservedGeneration != in.Generation {
				stale = append(stale, n.Name)
			}
		case c.Reason == v1alpha1.ReasonSpanningTreeConverging || c.Reason == v1alpha1.ReasonTunnelsNotLive:
			// Programmed, waiting for STP/RSTP to forward or for ovs-vswitchd to set the
			// ports up: progress, not a fault.
			converging = append(converging, n.Name)
		default:
			failing = append(failing, fmt.Sprintf("%s (%s)", n.Name, c.Reason))
		}
	}
	st.NodesTotal, st.NodesReady = int32(total), int32(ready)
	inCIDR, dupIPs := addressConflicts(in)
	free := 0
	if in.Pool != nil {
		free = in.Pool.Free(used)
		st.SubnetsUsed, st.SubnetsFree = int32(in.Pool.Size()-free), int32(free)
	}
	sort.Strings(failing)

	// Degraded.
	switch {
	case in.PoolErr != nil:
		set(v1alpha1.ConditionDegraded, true, ReasonInvalidSpec, in.PoolErr.Error())
	case in.ApplyErr != nil:
		set(v1alpha1.ConditionDegraded, true, ReasonAgentDeployFailed, "applying the agent DaemonSet and RBAC: "+in.ApplyErr.Error())
	case len(inCIDR) > 0:
		set(v1alpha1.ConditionDegraded, true, ReasonClusterCIDRConflict, fmt.Sprintf(
			"clusterCIDR %s contains the InternalIP of %s: its route (dev kbr0) would capture the node network's own traffic, so agents refuse to program it; recreate the NetworkCluster with a clusterCIDR outside the nodes' network",
			in.Pool.cluster, nameList(inCIDR)))
	case in.Pool != nil && len(serviceCIDRConflicts(in.Pool.cluster, in.ServiceCIDRs)) > 0:
		set(v1alpha1.ConditionDegraded, true, ReasonServiceCIDRConflict, fmt.Sprintf(
			"clusterCIDR %s overlaps the Service CIDR %s: pods and Services would share addresses, so no new node gets a subnet; recreate the NetworkCluster with a clusterCIDR outside the Service CIDRs (kubectl get servicecidrs)",
			in.Pool.cluster, nameList(serviceCIDRConflicts(in.Pool.cluster, in.ServiceCIDRs))))
	case len(dupIPs) > 0:
		set(v1alpha1.ConditionDegraded, true, ReasonDuplicateNodeIP, "nodes report the same InternalIP, and no agent makes a tunnel to an address two nodes claim: "+nameList(dupIPs))
	case tooManyPeers(in.Protocol, total):
		set(v1alpha1.ConditionDegraded, true, ReasonSpanningTreeLimit, fmt.Sprintf(
			"%d selected nodes need %d tunnels on every node, but OVS runs %s on at most %d ports of a bridge (beyond that a port forwards without it: a loop); agents leave their bridges as they are: set spec.loopPrevention.protocol to SplitHorizon%s",
			total, total-1, in.Protocol, in.Protocol.MaxTunnels(), rstpHint(total)))
	case len(noSubnet) > 0 && free == 0:
		set(v1alpha1.ConditionDegraded, true, ReasonSubnetsExhausted, fmt.Sprintf(
			"no free /%d subnet left in %s (%d used); nodes without a subnet: %s",
			in.Pool.prefixLen, in.Pool.cluster, in.Pool.Size(), nameList(noSubnet)))
	case len(silent) > 0:
		set(v1alpha1.ConditionDegraded, true, ReasonAgentNotReporting, fmt.Sprintf(
			"%d agents stopped renewing their heartbeat Lease (node down, or agent crashed or hung), so their nodes do not count as ready: %s",
			len(silent), nameList(silent)))
	case len(failing) > 0:
		set(v1alpha1.ConditionDegraded, true, ReasonNodesNotReady, "agents report not ready on: "+nameList(failing))
	default:
		set(v1alpha1.ConditionDegraded, false, ReasonAsExpected, "")
	}

	// Available.
	switch {
	case in.Deleting:
		set(v1alpha1.ConditionAvailable, false, ReasonUninstalling, "the NetworkCluster is being deleted")
	case in.PoolErr != nil:
		set(v1alpha1.ConditionAvailable, false, ReasonInvalidSpec, in.PoolErr.Error())
	case total == 0:
		set(v1alpha1.ConditionAvailable, false, ReasonNoNodes, "no node matches the node selector")
	case up == total:
		set(v1alpha1.ConditionAvailable, true, ReasonAllNodesReady, fmt.Sprintf("all %d nodes report Ready", total))
	default:
		set(v1alpha1.ConditionAvailable, false, ReasonNodesNotReady, fmt.Sprintf("%d of %d nodes report Ready", up, total))
	}

	// Progressing.
	switch {
	case in.Deleting && len(in.CleanupPending) > 0:
		set(v1alpha1.ConditionProgressing, true, ReasonUninstalling, "waiting for the agents to clean up: "+nameList(in.CleanupPending))
	case in.Deleting:
		set(v1alpha1.ConditionProgressing, true, ReasonUninstalling, "removing the agents and the NodeSubnets")
	case len(noSubnet) > 0 && free > 0:
		set(v1alpha1.ConditionProgressing, true, ReasonAllocatingSubnets, "allocating subnets for: "+nameList(noSubnet))
	case len(stale) > 0:
		set(v1alpha1.ConditionProgressing, true, ReasonRollingOut, fmt.Sprintf(
			"%d of %d nodes applied generation %d; still applying: %s", ready, total, in.Generation, nameList(stale)))
	case len(converging) > 0:
		set(v1alpha1.ConditionProgressing, true, ReasonSpanningTreeConverging, "tunnels are not forwarding yet (spanning tree converging, or ports being set up) on: "+nameList(converging))
	case len(notReported) > 0:
		set(v1alpha1.ConditionProgressing, true, ReasonWaitingForAgents, "waiting for the agents on: "+nameList(notReported))
	case len(noAddress) > 0:
		set(v1alpha1.ConditionProgressing, true, ReasonWaitingForNodeAddress, "waiting for an IPv4 InternalIP a tunnel can use (not 0.0.0.0, loopback, multicast or broadcast) on: "+nameList(noAddress))
	case total == 0:
		set(v1alpha1.ConditionProgressing, false, ReasonNoNodes, "no node matches the node selector")
	default:
		set(v1alpha1.ConditionProgressing, false, ReasonAsExpected, fmt.Sprintf("%d of %d nodes ready", ready, total))
	}
	return st
}

// heartbeatExpired: node has a heartbeat, and it expired at or before now.
func heartbeatExpired(hb map[string]time.Time, node string, now time.Time) bool {
	exp, ok := hb[node]
	return ok && !now.Before(exp)
}

// addressConflicts finds selected nodes whose InternalIP is inside the cluster CIDR
// ("node (ip)"), and InternalIPs two or more selected nodes share ("ip: a, b").
func addressConflicts(in statusInput) (inCIDR, dups []string) {
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if in.Selector == nil || !nodeInMesh(n, in.Selector) {
			continue
		}
		if ip, ok := internalIPv4(n); ok && in.Pool != nil && in.Pool.cluster.Contains(ip) {
			inCIDR = append(inCIDR, fmt.Sprintf("%s (%s)", n.Name, ip))
		}
	}
	for ip, ns := range duplicateGroups(in.Nodes, in.Selector) {
		names := make([]string, len(ns))
		for i, n := range ns {
			names[i] = n.Name
		}
		sort.Strings(names)
		dups = append(dups, fmt.Sprintf("%s: %s", ip, strings.Join(names, ", ")))
	}
	sort.Strings(inCIDR)
	sort.Strings(dups)
	return inCIDR, dups
}

// tooManyPeers: a full mesh of nodes needs nodes-1 tunnels per bridge, more than the protocol
// covers.
func tooManyPeers(p v1alpha1.LoopPreventionProtocol, nodes int) bool {
	max := p.MaxTunnels()
	return max > 0 && nodes-1 > max
}

func rstpHint(nodes int) string {
	if !tooManyPeers(v1alpha1.ProtocolRSTP, nodes) {
		return fmt.Sprintf(" (no limit) or RSTP (up to %d nodes)", v1alpha1.ProtocolRSTP.MaxTunnels()+1)
	}
	return " (no limit)"
}

// patchStatus writes st if it differs from what is stored, so that a pass with nothing new
// does not write (an operator restart leaves every resourceVersion as it was).
func patchStatus(ctx context.Context, c client.Client, nc *v1alpha1.NetworkCluster, st v1alpha1.NetworkClusterStatus) error {
	if equality.Semantic.DeepEqual(nc.Status, st) {
		return nil
	}
	patch := client.MergeFrom(nc.DeepCopy())
	nc.Status = st
	return client.IgnoreNotFound(c.Status().Patch(ctx, nc, patch))
}
