// Package metricsauth configures the metrics endpoint of the operator and the agent the way
// kubebuilder's scaffold does: HTTPS, and every request authenticated (TokenReview) and
// authorized (SubjectAccessReview: get on the non-resource URL /metrics) by the API server.
// The agent runs with hostNetwork, so its endpoint is a port on every node: plain HTTP would
// hand the node's network state to anyone who can reach it.
package metricsauth

import (
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// ReaderClusterRole is the ClusterRole a scraper (Prometheus' ServiceAccount) is bound to:
// config/rbac/metrics_reader_role.yaml.
const ReaderClusterRole = "ovsmesh-metrics-reader"

// Options returns the metrics server options for bindAddress ("0" or "" disables the
// endpoint). Without tls.crt/tls.key in certDir ("" = none), controller-runtime serves a
// self-signed certificate it makes at start.
func Options(bindAddress, certDir string) metricsserver.Options {
	if bindAddress == "" || bindAddress == "0" {
		return metricsserver.Options{BindAddress: "0"}
	}
	return metricsserver.Options{
		BindAddress:    bindAddress,
		SecureServing:  true,
		FilterProvider: filters.WithAuthenticationAndAuthorization,
		CertDir:        certDir,
	}
}
