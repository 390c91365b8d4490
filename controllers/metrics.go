package controllers

import (
	"errors"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Metrics on the manager's metrics endpoint. Reconcile errors need no metric of ours:
// controller-runtime exports controller_runtime_reconcile_errors_total{controller="nodesubnet-ipam"}
// and {controller="networkcluster"}.
var (
	subnetsAllocated = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_subnets_allocated",
		Help: "Node subnets of the cluster CIDR that are allocated (NodeSubnets).",
	})
	subnetsFree = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_subnets_free",
		Help: "Node subnets of the cluster CIDR still free.",
	})
	nodesWithoutSubnet = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_nodes_without_subnet",
		Help: "Selected nodes left without a subnet in the last IPAM pass (cluster CIDR exhausted, or no InternalIP).",
	})
	allocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ovsmesh_operator_allocations_total",
		Help: "Subnet allocations by result: allocated, exhausted (no subnet left) or error.",
	}, []string{"result"})
	allocationSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ovsmesh_operator_allocation_latency_seconds",
		Help:    "From a Node's creation to its NodeSubnet: how long a new node waits for its pod subnet.",
		Buckets: prometheus.ExponentialBuckets(0.01, 3, 10), // 10 ms … 197 s
	})
	subnetBlocks = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_operator_subnet_blocks",
		Help: "Subnet blocks (Leases of 32 node subnets each) this operator held in its last IPAM pass.",
	})
	nodesByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ovsmesh_operator_nodes",
		Help: "Selected nodes by the state their agent reports: ready, or the reason of Ready=False (Applied nodes of an older generation count as ready), no_subnet, not_reported, not_reporting (heartbeat expired).",
	}, []string{"state"})
	uninstallPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_operator_uninstall_pending_nodes",
		Help: "During uninstall, nodes whose agent has not reported CleanedUp yet (0 otherwise).",
	})
)

func init() {
	metrics.Registry.MustRegister(subnetsAllocated, subnetsFree, nodesWithoutSubnet,
		allocations, allocationSeconds, subnetBlocks, nodesByState, uninstallPending)
	for _, r := range []string{"allocated", "exhausted", "error"} {
		allocations.WithLabelValues(r)
	}
}

// observeAllocation counts one allocation's outcome (an invalid cidr with no error: another
// replica made the NodeSubnet, not counted).
func observeAllocation(node *corev1.Node, cidr netip.Prefix, err error, now time.Time) {
	switch {
	case errors.Is(err, ErrExhausted):
		allocations.WithLabelValues("exhausted").Inc()
	case err != nil:
		allocations.WithLabelValues("error").Inc()
	case cidr.IsValid():
		allocations.WithLabelValues("allocated").Inc()
		allocationSeconds.Observe(now.Sub(node.CreationTimestamp.Time).Seconds())
	}
}

// observeNodes sets the node gauges from the status input (the same one the status is
// computed from). Reasons are the agents' bounded set; a node counts once.
func observeNodes(in statusInput, now time.Time) {
	counts := map[string]int{}
	subnetOf := map[string]*v1alpha1.NodeSubnet{}
	for i := range in.Subnets {
		subnetOf[in.Subnets[i].Name] = &in.Subnets[i]
	}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if in.Selector == nil || !nodeInMesh(n, in.Selector) {
			continue
		}
		s := subnetOf[n.Name]
		var c *metav1.Condition
		if s != nil {
			c = meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		}
		switch {
		case s == nil:
			counts["no_subnet"]++
		case heartbeatExpired(in.Heartbeats, n.Name, now):
			counts["not_reporting"]++
		case c == nil:
			counts["not_reported"]++
		case c.Status == metav1.ConditionTrue:
			counts["ready"]++
		default:
			counts[c.Reason]++
		}
	}
	nodesByState.Reset()
	for _, st := range []string{"ready", "no_subnet", "not_reported", "not_reporting"} {
		nodesByState.WithLabelValues(st).Set(0)
	}
	for st, v := range counts {
		nodesByState.WithLabelValues(st).Set(float64(v))
	}
	uninstallPending.Set(float64(len(in.CleanupPending)))
}
