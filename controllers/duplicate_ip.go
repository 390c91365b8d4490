package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Two selected Nodes reporting one InternalIP cannot both be tunnel ends: every agent leaves
// that address out of its mesh (agent.Desired), the NetworkCluster is Degraded naming both
// (networkcluster_status.go), and the IPAM marks the later Node's NodeSubnet with
// NodeIPConflict and sends a Warning Event about each Node when it does.

// duplicateGroups returns, for every InternalIP that more than one selected Node reports,
// those Nodes, earliest first (creation time, then name).
func duplicateGroups(nodes []corev1.Node, sel labels.Selector) map[netip.Addr][]*corev1.Node {
	byIP := map[netip.Addr][]*corev1.Node{}
	for i := range nodes {
		n := &nodes[i]
		if sel == nil || !nodeInMesh(n, sel) {
			continue
		}
		if ip, ok := internalIPv4(n); ok {
			byIP[ip] = append(byIP[ip], n)
		}
	}
	for ip, ns := range byIP {
		if len(ns) < 2 {
			delete(byIP, ip)
			continue
		}
		sort.Slice(ns, func(i, j int) bool {
			a, b := ns[i].CreationTimestamp, ns[j].CreationTimestamp
			if !a.Equal(&b) {
				return a.Before(&b)
			}
			return ns[i].Name < ns[j].Name
		})
	}
	return byIP
}

// ipConflicts maps the name of every later Node of a duplicate group to the message of its
// NodeIPConflict condition.
func ipConflicts(groups map[netip.Addr][]*corev1.Node) map[string]string {
	out := map[string]string{}
	for ip, ns := range groups {
		for _, n := range ns[1:] {
			out[n.Name] = fmt.Sprintf("node %s reports InternalIP %s, which node %s (created earlier) reports too: no tunnel can mean both, so every agent leaves %s out of the mesh; give one of them another address",
				n.Name, ip, ns[0].Name, ip)
		}
	}
	return out
}

// markDuplicates brings the NodeIPConflict condition of every NodeSubnet in line with the
// Nodes, and sends the Events when one is set. The patch carries the status read from the
// API server, with an optimistic lock: an agent's write in between makes it a conflict,
// retried on the next pass, never a lost Ready.
func (r *IPAMReconciler) markDuplicates(ctx context.Context, nc *v1alpha1.NetworkCluster, nodes []corev1.Node, subnets []v1alpha1.NodeSubnet) error {
	groups := duplicateGroups(nodes, nodeSelector(nc))
	want := ipConflicts(groups)
	var errs []error
	for i := range subnets {
		s := &subnets[i]
		msg, conflict := want[s.Spec.NodeName]
		cur := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionNodeIPConflict)
		if (!conflict && cur == nil) || (conflict && cur != nil && cur.Message == msg) {
			continue
		}
		patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if conflict {
			meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionNodeIPConflict,
				Status: metav1.ConditionTrue, Reason: ReasonDuplicateNodeIP, Message: msg, LastTransitionTime: metaNow(r.Options.Now())})
		} else {
			meta.RemoveStatusCondition(&s.Status.Conditions, v1alpha1.ConditionNodeIPConflict)
		}
		if err := r.Client.Status().Patch(ctx, s, patch); err != nil {
			if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				errs = append(errs, err)
			}
			continue
		}
		if conflict && cur == nil {
			for _, g := range groups {
				if !slices.ContainsFunc(g, func(n *corev1.Node) bool { return n.Name == s.Spec.NodeName }) {
					continue
				}
				for _, n := range g {
					r.Recorder.Eventf(n, nc, corev1.EventTypeWarning, ReasonDuplicateNodeIP, "Mesh", "%s", msg)
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("NodeIPConflict conditions: %v", errs)
	}
	return nil
}

// ipConflictChanged passes NodeSubnet updates that add, change or remove NodeIPConflict.
var ipConflictChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*v1alpha1.NodeSubnet)
	n, ok2 := e.ObjectNew.(*v1alpha1.NodeSubnet)
	if !ok1 || !ok2 {
		return false
	}
	a := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionNodeIPConflict)
	b := meta.FindStatusCondition(n.Status.Conditions, v1alpha1.ConditionNodeIPConflict)
	return (a == nil) != (b == nil) || (a != nil && a.Message != b.Message)
}}
