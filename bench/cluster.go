package bench

import (
	"context"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/harness"
)

// ClusterOptions are the NetworkCluster settings of a benchmark cluster.
type ClusterOptions struct {
	Nodes    int
	Tunnel   string // GRE or VXLAN
	Protocol string // STP or RSTP
	// FastTimers sets forwardDelay 4 s, maxAge 6 s, helloTime 1 s (the e2e tests' values);
	// otherwise OVS's defaults apply (forward delay 15 s, max age 20 s, hello 2 s).
	FastTimers bool
	MTU        int32
}

// StartCluster starts a netns cluster (internal/harness) with the operator and agents, applies
// the NetworkCluster (userspace datapath) and waits until it is Available. Closed at e.Close.
func StartCluster(ctx context.Context, e *Env, o ClusterOptions) (*harness.Cluster, error) {
	c, err := harness.Start(ctx, harness.Options{Nodes: o.Nodes, Out: e.Log})
	if err != nil {
		return nil, err
	}
	e.Defer(c.Close)
	spec := v1alpha1.NetworkClusterSpec{
		Tunnel:         v1alpha1.TunnelSpec{Type: v1alpha1.TunnelType(o.Tunnel)},
		LoopPrevention: v1alpha1.LoopPreventionSpec{Protocol: v1alpha1.LoopPreventionProtocol(o.Protocol)},
		DatapathType:   "netdev",
		MTU:            o.MTU,
	}
	if o.FastTimers {
		spec.LoopPrevention.HelloTime, spec.LoopPrevention.MaxAge, spec.LoopPrevention.ForwardDelay = 1, 6, 4
	}
	nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName}, Spec: spec}
	if err := c.Client.Create(ctx, nc); err != nil {
		return nil, err
	}
	return c, WaitAvailable(ctx, c, 3*time.Minute)
}

// WaitAvailable waits until the NetworkCluster's current generation is Available with every
// node of the harness ready.
func WaitAvailable(ctx context.Context, c *harness.Cluster, timeout time.Duration) error {
	var nc v1alpha1.NetworkCluster
	var gerr error
	err := waitFor(ctx, timeout, 200*time.Millisecond, func() bool {
		gerr = c.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.NetworkClusterName}, &nc)
		return gerr == nil && nc.Status.ObservedGeneration == nc.Generation &&
			apimeta.IsStatusConditionTrue(nc.Status.Conditions, v1alpha1.ConditionAvailable) &&
			int(nc.Status.NodesReady) == len(c.Nodes) && int(nc.Status.NodesTotal) == len(c.Nodes)
	})
	if err != nil {
		return fmt.Errorf("NetworkCluster not Available with %d ready nodes: %w (get: %v, status %+v)", len(c.Nodes), err, gerr, nc.Status)
	}
	return nil
}
