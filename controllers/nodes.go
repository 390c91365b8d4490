package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// clusterKey is the one reconcile key of both reconcilers: the singleton NetworkCluster.
var clusterKey = types.NamespacedName{Name: v1alpha1.NetworkClusterName}

// toCluster maps any watched object to the cluster key. Both reconcilers look at the whole
// cluster in every pass (level-triggered), so every relevant change is the same request, and
// the workqueue coalesces bursts (50 new nodes → a handful of passes, not 50).
var toCluster = handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: clusterKey}}
})

// internalIPv4 returns the node's first InternalIP that a tunnel can use (IPv4 unicast, see
// v1alpha1.UsableNodeIP): the underlay address tunnels go to. A node with none (only IPv6, or an
// address like 0.0.0.0 that would break every peer's tunnel sync) gets no subnet yet; the
// NetworkCluster's Progressing condition names it.
func internalIPv4(n *corev1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && v1alpha1.UsableNodeIP(ip) == nil {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// nodeSelector is the NetworkCluster's node selector (empty selects every node).
func nodeSelector(nc *v1alpha1.NetworkCluster) labels.Selector { return nc.Spec.NodeSelectorOf() }

// nodeInMesh: the node exists, is not going away and matches the selector.
func nodeInMesh(n *corev1.Node, sel labels.Selector) bool { return v1alpha1.InMesh(n, sel) }

// nodeChanged ignores the Node updates that cannot change the mesh (heartbeats, conditions,
// images): only labels, the InternalIP and deletion matter.
var nodeChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*corev1.Node)
	n, ok2 := e.ObjectNew.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	oip, _ := internalIPv4(o)
	nip, _ := internalIPv4(n)
	return oip != nip || !labels.Equals(o.Labels, n.Labels) || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil)
}}

// isTrue reports whether the condition t is True.
func isTrue(conds []metav1.Condition, t string) bool {
	return meta.IsStatusConditionTrue(conds, t)
}

// nameList renders node names for an event or a condition message, bounded so that a
// thousand-node exhaustion still fits an Event note (1 KiB).
func nameList(names []string) string {
	const max = 10
	s := append([]string(nil), names...)
	sort.Strings(s)
	if len(s) <= max {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:max], ", "), len(s)-max)
}
