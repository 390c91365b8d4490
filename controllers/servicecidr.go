package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Service CIDRs are discoverable since Kubernetes 1.33: the API server publishes them as
// networking.k8s.io/v1 ServiceCIDR objects (the default one is named "kubernetes"). A
// cluster CIDR that overlaps one would route ClusterIPs into kbr0 ahead of kube-proxy's
// rules for some of them and hand pods addresses a Service may also get, so the operator
// allocates no subnet while it does and reports Degraded ServiceCIDRConflict. Subnets that
// already exist are left alone (a ServiceCIDR added later must not cut a running cluster
// off); the condition tells a person. Older API servers do not serve the kind: the check is
// then skipped, as it was before the API existed.

// +kubebuilder:rbac:groups=networking.k8s.io,resources=servicecidrs,verbs=get;list;watch

// ReasonServiceCIDRConflict: the cluster CIDR overlaps a Service CIDR.
const ReasonServiceCIDRConflict = "ServiceCIDRConflict"

var serviceCIDRKind = schema.GroupKind{Group: networkingv1.GroupName, Kind: "ServiceCIDR"}

// serviceCIDRsServed reports whether the API server serves networking.k8s.io/v1 ServiceCIDR.
func serviceCIDRsServed(m meta.RESTMapper) bool {
	_, err := m.RESTMapping(serviceCIDRKind, "v1")
	return err == nil
}

// namedPrefix is one CIDR of a ServiceCIDR object.
type namedPrefix struct {
	Name   string
	Prefix netip.Prefix
}

// listServiceCIDRs returns every CIDR of every ServiceCIDR (an unparsable one is skipped:
// the API server validates them).
func listServiceCIDRs(ctx context.Context, c client.Reader) ([]namedPrefix, error) {
	var l networkingv1.ServiceCIDRList
	if err := c.List(ctx, &l); err != nil {
		return nil, fmt.Errorf("listing ServiceCIDRs: %w", err)
	}
	var out []namedPrefix
	for _, s := range l.Items {
		for _, c := range s.Spec.CIDRs {
			if p, err := netip.ParsePrefix(c); err == nil {
				out = append(out, namedPrefix{s.Name, p.Masked()})
			}
		}
	}
	return out, nil
}

// serviceCIDRConflicts names the Service CIDRs that overlap cluster, sorted.
func serviceCIDRConflicts(cluster netip.Prefix, svc []namedPrefix) []string {
	var out []string
	for _, s := range svc {
		if cluster.IsValid() && s.Prefix.Overlaps(cluster) {
			out = append(out, fmt.Sprintf("%s (ServiceCIDR %s)", s.Prefix, s.Name))
		}
	}
	sort.Strings(out)
	return out
}
