package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// TestNodeLeavesAndRejoins: an agent stopped while its node is in the mesh leaves the data
// path as it is; one whose NodeSubnet is deleted removes it (plugins stay for a rejoin) and
// builds it again from a new NodeSubnet with another subnet; one stopped after its node's
// label stopped matching the selector removes it, plugins included. Real kube-apiserver,
// real OVS, a network namespace.
func TestNodeLeavesAndRejoins(t *testing.T) {
	env := testenv.StartT(t)
	c := env.Client
	ctx := context.Background()
	n := nodetest.New(t, "ovsmt-lv-"+nodetest.RunID())
	n.Underlay("172.30.0.1")
	bin := t.TempDir()
	ours := []string{"ovsmesh", "ovsmesh-host-local", "ovsmesh-portmap"}
	for _, p := range append(ours, "host-local", "portmap") { // the last two: the node's own
		if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := RecordInstalledPlugins(bin, ours); err != nil {
		t.Fatal(err)
	}

	spec := testCluster()
	spec.NodeSelector = map[string]string{"pool": "mesh"}
	nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName}, Spec: spec}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"pool": "mesh"}}}
	for _, o := range []client.Object{nc, node} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range threeNodes()[1:] { // n1, n2
		if err := c.Create(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	start := func() *agentRun {
		return startAgentWith(t, env, n, "n1", n.Sock, func(r *Reconciler, mgr manager.Manager) {
			r.CNIBinDir = bin
			if err := mgr.Add(r.ShutdownCleanup()); err != nil {
				t.Fatal(err)
			}
		})
	}
	conf := filepath.Join(n.Dir, "net.d", CNIConfFile)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	hasBridges := func() (kbr0, obr0 bool) {
		_, kbr0 = n.Links()["kbr0"]
		return kbr0, strings.Contains(n.Vsctl("list-br"), "obr0")
	}
	built := func(what string) {
		t.Helper()
		if k, o := hasBridges(); !k || !o || !exists(conf) {
			t.Fatalf("%s: kbr0 %v, obr0 %v, CNI config %v; want all", what, k, o, exists(conf))
		}
	}
	gone := func(what string) {
		t.Helper()
		nodetest.WaitFor(t, 10*time.Second, what, func() bool {
			k, o := hasBridges()
			return !k && !o && !exists(conf)
		})
	}

	// The Node condition the scheduler's taint follows.
	netCond := func(what, status, reason string) {
		t.Helper()
		nodetest.WaitFor(t, 10*time.Second, what, func() bool {
			var n corev1.Node
			if err := c.Get(ctx, client.ObjectKeyFromObject(node), &n); err != nil {
				return false
			}
			for _, nc := range n.Status.Conditions {
				if nc.Type == corev1.NodeNetworkUnavailable {
					return string(nc.Status) == status && nc.Reason == reason
				}
			}
			return false
		})
	}

	a := start()
	waitStatus(t, c, "n1", "Ready", isReady(nc.Generation))
	built("Ready")
	netCond("NetworkUnavailable=False OvsmeshIsUp", "False", NodeReasonUp)
	idx := n.Links()["kbr0"].Index

	// A restart while the node is in the mesh: nothing changes.
	a.stop()
	built("after a stop in the mesh")
	if got := n.Links()["kbr0"].Index; got != idx {
		t.Errorf("kbr0 recreated across a restart (index %d, was %d)", got, idx)
	}

	// The NodeSubnet goes (the operator deletes it when the node leaves): torn down while
	// the agent runs; its plugin stays, for a rejoin.
	a = start()
	waitStatus(t, c, "n1", "Ready again", isReady(nc.Generation))
	if err := c.Delete(ctx, &v1alpha1.NodeSubnet{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}
	gone("data path removed once the NodeSubnet is gone")
	netCond("NetworkUnavailable=True OvsmeshRemoved after leaving", "True", NodeReasonRemoved)
	if !exists(filepath.Join(bin, "ovsmesh")) {
		t.Error("the installed plugin was removed while the agent keeps running (a rejoin needs it)")
	}
	if _, err := a.r.LastResult(); err != nil {
		t.Errorf("leaving: %v", err)
	}

	// Rejoin with another subnet.
	again := subnet("n1", "10.244.9.0/24", "10.244.9.1", "172.30.0.1")
	if err := c.Create(ctx, &again); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "n1", "Ready after rejoining", isReady(nc.Generation))
	built("rejoined")
	netCond("NetworkUnavailable=False after rejoining", "False", NodeReasonUp)
	if out, err := exec.Command("ip", "-n", n.NS, "-br", "addr", "show", "kbr0").CombinedOutput(); err != nil || !strings.Contains(string(out), "10.244.9.1/24") {
		t.Errorf("kbr0 after rejoining: %s (%v), want 10.244.9.1/24", out, err)
	}

	// The label goes, then the pod is stopped (the DaemonSet controller's doing): torn
	// down at shutdown, with the plugin ovsmesh installed and none of the node's own.
	if err := c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
		t.Fatal(err)
	}
	node.Labels = nil
	if err := c.Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	a.stop()
	gone("data path removed when stopped outside the selector")
	netCond("NetworkUnavailable=True OvsmeshRemoved after the shutdown cleanup", "True", NodeReasonRemoved)
	for _, p := range ours {
		if exists(filepath.Join(bin, p)) {
			t.Errorf("the plugin %s ovsmesh installed is left after the node left the mesh", p)
		}
	}
	for _, p := range []string{"host-local", "portmap"} {
		if !exists(filepath.Join(bin, p)) {
			t.Errorf("the node's own %s was removed", p)
		}
	}
}
