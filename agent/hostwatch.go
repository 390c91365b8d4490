package agent

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/hostnet"
)

// WatchHost turns the kernel's notifications about what the agent keeps on the host (its
// links, addresses, routes, its nftables table) into reconciles on events, the channel the
// controller already watches for OVS changes: drift is repaired at once, not at the next
// periodic resync. One pending event is enough, the pass re-reads everything.
func WatchHost(ctx context.Context, host *hostnet.Host, events chan<- event.GenericEvent) error {
	ev := event.GenericEvent{Object: &v1alpha1.NodeSubnet{}}
	return host.Watch(ctx, func() {
		select {
		case events <- ev:
		default:
		}
	})
}
