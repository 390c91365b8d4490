package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// agentRun is one agent process's worth of objects: manager, reconciler and OVS connector,
// running until stop.
type agentRun struct {
	r    *Reconciler
	stop func()
}

func startAgent(t *testing.T, env *testenv.Env, n *nodetest.Node, name string) *agentRun {
	t.Helper()
	return startAgentWithSocket(t, env, n, name, n.Sock)
}

func startAgentWithSocket(t *testing.T, env *testenv.Env, n *nodetest.Node, name, sock string) *agentRun {
	t.Helper()
	return startAgentWith(t, env, n, name, sock, nil)
}

// startAgentWith starts an agent as main does when setup is nil; setup may change the
// reconciler and add runnables before the manager starts.
func startAgentWith(t *testing.T, env *testenv.Env, n *nodetest.Node, name, sock string, setup func(*Reconciler, manager.Manager), opts ...func(*ManagerOptions)) *agentRun {
	t.Helper()
	mo := ManagerOptions{NodeName: name, MetricsAddr: "0", ProbeAddr: "0", SkipNameValidation: true}
	for _, o := range opts {
		o(&mo)
	}
	mgr, err := NewManager(env.Config, mo)
	if err != nil {
		t.Fatal(err)
	}
	conn := NewConnector(sock, testr.New(t))
	conn.VswitchdCtl = n.Ctl()
	r := &Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), NodeName: name, Host: n.Host(), OVS: conn,
		CNIConfDir: filepath.Join(n.Dir, "net.d"), Log: testr.New(t)}
	if setup != nil {
		setup(r, mgr)
	}
	if err := SetupWithManager(mgr, r, conn.Events); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once bool
	stop := func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
		conn.Close()
	}
	t.Cleanup(stop)
	return &agentRun{r: r, stop: stop}
}

// meshEnv starts a real API server and a node namespace with OVS (underlay 172.30.0.1),
// and creates the NetworkCluster with spec and the NodeSubnets of n1 (this node) and n2.
func meshEnv(t *testing.T, prefix string, spec v1alpha1.NetworkClusterSpec) (*testenv.Env, *nodetest.Node, *v1alpha1.NetworkCluster) {
	t.Helper()
	env := testenv.StartT(t)
	n := nodetest.New(t, prefix+nodetest.RunID())
	n.Underlay("172.30.0.1")
	nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName}, Spec: spec}
	if err := env.Client.Create(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	for _, s := range threeNodes()[1:] { // n1, n2
		if err := env.Client.Create(context.Background(), &s); err != nil {
			t.Fatal(err)
		}
	}
	return env, n, nc
}

// waitStatus polls this node's NodeSubnet until ok accepts it.
func waitStatus(t *testing.T, c client.Client, name, what string, ok func(*v1alpha1.NodeSubnet) bool) *v1alpha1.NodeSubnet {
	t.Helper()
	var ns v1alpha1.NodeSubnet
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &ns); err == nil && ok(&ns) {
			return &ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status: %+v", what, ns.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ready(ns *v1alpha1.NodeSubnet) *metav1.Condition {
	return meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionReady)
}

func isReady(gen int64) func(*v1alpha1.NodeSubnet) bool {
	return func(ns *v1alpha1.NodeSubnet) bool {
		c := ready(ns)
		return c != nil && c.Status == metav1.ConditionTrue && ns.Status.ObservedGeneration == gen
	}
}

// TestReconcilerAgainstAPIServer runs the agent's controller (cache limited by field
// selectors, one reconcile loop, status patches, OVS events through source.Channel) against
// a real kube-apiserver and a real OVS in a test namespace.
func TestReconcilerAgainstAPIServer(t *testing.T) {
	env, n, nc := meshEnv(t, "ovsmt-rc-", testCluster())
	c := env.Client
	ctx := context.Background()

	// ovsdb-server not reachable: Ready=False with a reason, no crash, retried.
	broken := startAgentWithSocket(t, env, n, "n1", filepath.Join(n.Dir, "missing.sock"))
	ns := waitStatus(t, c, "n1", "OVSUnavailable", func(ns *v1alpha1.NodeSubnet) bool {
		r := ready(ns)
		return r != nil && r.Status == metav1.ConditionFalse && r.Reason == v1alpha1.ReasonOVSUnavailable
	})
	t.Logf("not ready: %s", ready(ns).Message)
	broken.stop()

	a := startAgent(t, env, n, "n1")
	ns = waitStatus(t, c, "n1", "Ready", isReady(nc.Generation))
	// Ready: the one tunnel is live and forwarding. Its peer has no node behind it, so BFD
	// (on in testCluster) calls it down: counted, and listed as the one unhealthy peer.
	if ns.Status.TunnelCount != 1 || ns.Status.MTU != 1458 || ns.Status.Tunnels.Desired != 1 ||
		ns.Status.Tunnels.Live != 1 || ns.Status.Tunnels.Forwarding != 1 || ns.Status.Tunnels.Down != 1 ||
		len(ns.Status.UnhealthyPeers) != 1 || ns.Status.UnhealthyPeers[0].NodeName != "n2" ||
		ns.Status.UnhealthyPeers[0].Port != "gre-ac1e0002" || ns.Status.UnhealthyPeers[0].Reason != v1alpha1.PeerReasonDown {
		t.Errorf("status = %+v", ns.Status)
	}
	t.Logf("Ready: %s", ready(ns).Message)

	// A peer joins.
	n3 := threeNodes()[0]
	if err := c.Create(ctx, &n3); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "n1", "2 tunnels", func(ns *v1alpha1.NodeSubnet) bool {
		return ns.Status.TunnelCount == 2 && ns.Status.Tunnels.Desired == 2
	})
	if got := sortedLines(n.Vsctl("list-ports", "obr0")); !slices.Equal(got, []string{"gre-ac1e0002", "gre-ac1e0003", "vobr0"}) {
		t.Errorf("ports = %v", got)
	}

	// STP state reaches the status through OVS change events (forward delay 4 s: listening,
	// learning, then forwarding; nothing else is on the segment, so no port blocks).
	waitStatus(t, c, "n1", "STP forwarding on the tunnels", func(ns *v1alpha1.NodeSubnet) bool {
		return ns.Status.Tunnels.Forwarding == 2 && ns.Status.Tunnels.Converging == 0
	})

	// Live switch to VXLAN: a new generation is applied and reported.
	patch := client.MergeFrom(nc.DeepCopy())
	nc.Spec.Tunnel.Type = v1alpha1.TunnelVXLAN
	if err := c.Patch(ctx, nc, patch); err != nil {
		t.Fatal(err)
	}
	ns = waitStatus(t, c, "n1", "VXLAN applied", isReady(nc.Generation))
	if ns.Status.MTU != 1450 || ns.Status.TunnelCount != 2 {
		t.Errorf("after VXLAN: %+v", ns.Status)
	}
	if got := sortedLines(n.Vsctl("list-ports", "obr0")); !slices.Equal(got, []string{"vobr0", "vxlan-ac1e0002", "vxlan-ac1e0003"}) {
		t.Errorf("ports = %v", got)
	}

	// A peer leaves.
	if err := c.Delete(ctx, &n3); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "n1", "1 tunnel", func(ns *v1alpha1.NodeSubnet) bool { return ns.Status.TunnelCount == 1 })

	// No underlay: Ready=False with a reason, then recovery once the address is back.
	setNodeIP(t, c, "n1", "172.30.0.9")
	ns = waitStatus(t, c, "n1", "NoUnderlay", func(ns *v1alpha1.NodeSubnet) bool {
		r := ready(ns)
		return r != nil && r.Status == metav1.ConditionFalse && r.Reason == v1alpha1.ReasonNoUnderlay
	})
	t.Logf("not ready: %s", ready(ns).Message)
	setNodeIP(t, c, "n1", "172.30.0.1")
	waitStatus(t, c, "n1", "Ready again", isReady(nc.Generation))

	// ovs-vswitchd dies (kept status columns and all): Ready=False within a probe interval,
	// with a reason; Ready again once it is back.
	n.StopVswitchd(false)
	ns = waitStatus(t, c, "n1", "VswitchdUnavailable", func(ns *v1alpha1.NodeSubnet) bool {
		r := ready(ns)
		return r != nil && r.Status == metav1.ConditionFalse && r.Reason == v1alpha1.ReasonVswitchdUnavailable
	})
	t.Logf("not ready: %s", ready(ns).Message)
	n.StartVswitchd()
	waitStatus(t, c, "n1", "Ready after ovs-vswitchd is back", isReady(nc.Generation))

	// The agent stops: nothing is torn down. A new agent adopts it all without a change.
	links := n.Links()
	a.stop()
	if got := n.Vsctl("list-br"); got != "obr0" {
		t.Errorf("bridges after agent exit: %q", got)
	}
	if after := n.Links(); after["kbr0"].Index != links["kbr0"].Index || after["vkbr0"].Master != "kbr0" {
		t.Errorf("host changed on agent exit")
	}
	a = startAgent(t, env, n, "n1")
	nodetest.WaitFor(t, 30*time.Second, "the restarted agent's first pass", func() bool {
		res, err := a.r.LastResult()
		return err == nil && res.Duration > 0
	})
	if res, _ := a.r.LastResult(); res.Changed() {
		t.Errorf("restarted agent changed something: %+v", res)
	}

	// Teardown requested through the NodeSubnet.
	var own v1alpha1.NodeSubnet
	if err := c.Get(ctx, client.ObjectKey{Name: "n1"}, &own); err != nil {
		t.Fatal(err)
	}
	p := client.MergeFrom(own.DeepCopy())
	own.Spec.Teardown = true
	if err := c.Patch(ctx, &own, p); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "n1", "CleanedUp", func(ns *v1alpha1.NodeSubnet) bool {
		cu := meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionCleanedUp)
		return cu != nil && cu.Status == metav1.ConditionTrue
	})
	if got := n.Vsctl("list-br"); got != "" {
		t.Errorf("bridges after teardown: %q", got)
	}
	for name := range n.Links() {
		if slices.Contains([]string{"kbr0", "vkbr0", "vobr0"}, name) {
			t.Errorf("%s left after teardown", name)
		}
	}
}

func setNodeIP(t *testing.T, c client.Client, name, ip string) {
	t.Helper()
	var ns v1alpha1.NodeSubnet
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &ns); err != nil {
		t.Fatal(err)
	}
	p := client.MergeFrom(ns.DeepCopy())
	ns.Spec.NodeIP = ip
	if err := c.Patch(context.Background(), &ns, p); err != nil {
		t.Fatal(fmt.Errorf("setting nodeIP: %w", err))
	}
}
