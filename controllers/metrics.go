package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics on the manager's metrics endpoint. Reconcile errors need no metric of ours:
// controller-runtime exports controller_runtime_reconcile_errors_total{controller="nodesubnet-ipam"}
// and {controller="networkcluster"}.
var (
	subnetsAllocated = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_subnets_allocated",
		Help: "Node subnets of the cluster CIDR that are allocated (NodeSubnets and in-flight claims).",
	})
	subnetsFree = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_subnets_free",
		Help: "Node subnets of the cluster CIDR still free.",
	})
	nodesWithoutSubnet = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_nodes_without_subnet",
		Help: "Selected nodes left without a subnet in the last IPAM pass (cluster CIDR exhausted, or no InternalIP).",
	})
)

func init() {
	metrics.Registry.MustRegister(subnetsAllocated, subnetsFree, nodesWithoutSubnet)
}
