package agent

import (
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// trimForCache returns the cache transform for NodeSubnets: the agent needs every peer's
// spec (name, CIDR, node IP) but only its own status, and no managedFields at all (with
// server-side field ownership they are the bulk of a NodeSubnet). Peers' statuses are
// bounded in size since they carry counts, not peer lists, but an agent still has no use
// for 1,000 of them.
//
// The status of its own NodeSubnet stays, because the agent patches it with a merge patch
// computed against the cached copy. Peers' statuses are never read.
func trimForCache(nodeName string) toolscache.TransformFunc {
	strip := cache.TransformStripManagedFields()
	return func(in any) (any, error) {
		out, err := strip(in)
		if err != nil {
			return out, err
		}
		if ns, ok := out.(*v1alpha1.NodeSubnet); ok && ns.Name != nodeName {
			ns.Status = v1alpha1.NodeSubnetStatus{}
		}
		return out, nil
	}
}
