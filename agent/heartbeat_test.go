package agent

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// TestHeartbeatCreatesAndRenewsLease runs the heartbeat in an agent manager against a real
// API server: no Lease while the node has no NodeSubnet (it would have no owner), then the
// Lease named after the node, held by it, 40 s, owned by the NodeSubnet, labelled for the
// operator's cache, and renewed every 10 s; it is left in place when the agent stops.
func TestHeartbeatCreatesAndRenewsLease(t *testing.T) {
	env := testenv.StartT(t)
	c := env.Client
	ctx := context.Background()
	ns := "ovsmesh-hb-" + nodetest.RunID()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	node := "hb-" + nodetest.RunID()
	mgr, err := NewManager(env.Config, ManagerOptions{NodeName: node, MetricsAddr: "0", ProbeAddr: "0", SkipNameValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := NewHeartbeat(env.Config, mgr.GetClient(), ns, node, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(hb); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	key := client.ObjectKey{Namespace: ns, Name: v1alpha1.HeartbeatLeaseName(node)}
	var l coordinationv1.Lease
	time.Sleep(2 * time.Second) // the heartbeat's first attempt runs at once
	if err := c.Get(ctx, key, &l); err == nil {
		t.Fatalf("a heartbeat Lease without a NodeSubnet to own it: %+v", l)
	}

	s := subnet(node, "10.244.1.0/24", "10.244.1.1", "172.30.0.1")
	if err := c.Create(ctx, &s); err != nil {
		t.Fatal(err)
	}
	// The next attempt is one renew interval later.
	nodetest.WaitFor(t, v1alpha1.HeartbeatRenewInterval+10*time.Second, "the heartbeat Lease", func() bool {
		return c.Get(ctx, key, &l) == nil
	})
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != node ||
		l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 40 || l.Spec.RenewTime == nil {
		t.Errorf("Lease spec = %+v, want held by %s for 40 s", l.Spec, node)
	}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "NodeSubnet" || l.OwnerReferences[0].UID != s.UID {
		t.Errorf("owner references = %+v, want the NodeSubnet %s (%s)", l.OwnerReferences, s.Name, s.UID)
	}
	if l.Labels[v1alpha1.LabelHeartbeat] != "true" || l.Labels["app.kubernetes.io/part-of"] != "ovsmesh" {
		t.Errorf("labels = %v, want the heartbeat label and part-of=ovsmesh (the operator's cache selects them)", l.Labels)
	}

	first := l.Spec.RenewTime.Time
	nodetest.WaitFor(t, v1alpha1.HeartbeatRenewInterval+10*time.Second, "a renewal", func() bool {
		return c.Get(ctx, key, &l) == nil && l.Spec.RenewTime.After(first)
	})
	if d := l.Spec.RenewTime.Sub(first); d < v1alpha1.HeartbeatRenewInterval/2 {
		t.Errorf("renewed %v after the previous renewal, want about %v", d, v1alpha1.HeartbeatRenewInterval)
	}

	stop()
	if err := c.Get(ctx, key, &l); err != nil {
		t.Errorf("the Lease after the agent stopped: %v; a restart must not look like an outage", err)
	}
}
