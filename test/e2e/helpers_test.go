package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/harness"
)

// startCluster starts a harness cluster for one test, torn down when the test ends (also on
// failure). OVSMESH_KEEP_LOGS=1 keeps the run directory for post-mortems.
func startCluster(t *testing.T, nodes int) *harness.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := harness.Start(ctx, harness.Options{Nodes: nodes, Out: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, c)
		}
		c.Close()
	})
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func dumpLogs(t *testing.T, c *harness.Cluster) {
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.AgentLog())
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s agent log (tail) ---\n%s", n.Name, strings.Join(lines, "\n"))
	}
	b, _ := os.ReadFile(c.Dir + "/operator.log")
	lines := strings.Split(string(b), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("--- operator log (tail) ---\n%s", strings.Join(lines, "\n"))
}

// apply creates the NetworkCluster from YAML with kubectl, as a user would.
func apply(t *testing.T, c *harness.Cluster, yaml string) {
	t.Helper()
	f := c.Dir + "/nc.yaml"
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Kubectl(context.Background(), "apply", "--server-side", "-f", f); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// networkCluster builds a NetworkCluster YAML for the tests: userspace datapath and short STP
// timers (convergence in seconds), with the given tunnel type and protocol.
func networkCluster(tunnel, protocol string) string {
	return fmt.Sprintf(`apiVersion: network.ovsmesh.io/v1alpha1
kind: NetworkCluster
metadata: {name: default}
spec:
  tunnel: {type: %s}
  loopPrevention: {protocol: %s, priority: 32768, helloTime: 1, maxAge: 6, forwardDelay: 4}
  datapathType: netdev
`, tunnel, protocol)
}

// waitAvailable waits until the operator reports the current generation Available with every
// node ready.
func waitAvailable(t *testing.T, c *harness.Cluster, timeout time.Duration) *v1alpha1.NetworkCluster {
	t.Helper()
	var nc v1alpha1.NetworkCluster
	deadline := time.Now().Add(timeout)
	for {
		err := c.Client.Get(context.Background(), client.ObjectKey{Name: "default"}, &nc)
		if err == nil && nc.Status.ObservedGeneration == nc.Generation &&
			apimeta.IsStatusConditionTrue(nc.Status.Conditions, v1alpha1.ConditionAvailable) &&
			int(nc.Status.NodesReady) == len(c.Nodes) && int(nc.Status.NodesTotal) == len(c.Nodes) {
			return &nc
		}
		if time.Now().After(deadline) {
			t.Fatalf("NetworkCluster not Available with %d ready nodes after %s: err=%v status=%+v", len(c.Nodes), timeout, err, nc.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// availableThenPing is what a user does after installing: `kubectl wait
// --for=condition=Available`, start pods, ping. Every pod pair must answer on the first try
// (three echoes, no retry): Available must not come before pods can talk, whatever the
// loop prevention. It returns the pods (perNode on every node).
func availableThenPing(t *testing.T, c *harness.Cluster, perNode int) []*harness.Pod {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	if out, err := c.Kubectl(ctx, "wait", "--for=condition=Available", "networkcluster/default", "--timeout=3m"); err != nil {
		t.Fatalf("kubectl wait --for=condition=Available: %v\n%s", err, out)
	}
	t.Logf("Available %.1f s after the wait started", time.Since(start).Seconds())
	pods := addPods(t, c, perNode)
	res := harness.PingAll(ctx, pods, 0)
	if f := harness.Failed(res); len(f) > 0 {
		t.Fatalf("right after Available, %d of %d pod pairs do not ping on the first try: %v", len(f), len(res), f)
	}
	t.Logf("right after Available: %d/%d pod pairs ping on the first try", len(res), len(res))
	return pods
}

// eventually polls cond until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// addPods attaches perNode pods to every node.
func addPods(t *testing.T, c *harness.Cluster, perNode int) []*harness.Pod {
	t.Helper()
	var pods []*harness.Pod
	for _, n := range c.Nodes {
		for i := 0; i < perNode; i++ {
			p, err := c.AddPod(context.Background(), n, fmt.Sprintf("%s%c", n.Name, 'a'+i))
			if err != nil {
				t.Fatal(err)
			}
			pods = append(pods, p)
		}
	}
	return pods
}

func pingAll(t *testing.T, pods []*harness.Pod, timeout time.Duration) {
	t.Helper()
	res := harness.PingAll(context.Background(), pods, timeout)
	if f := harness.Failed(res); len(f) > 0 {
		t.Fatalf("%d of %d pod pairs do not ping: %v", len(f), len(res), f)
	}
	t.Logf("%d/%d pod pairs ping", len(res), len(res))
}

// blockedPorts counts tunnel ports in a blocking/discarding state across the nodes.
func blockedPorts(t *testing.T, c *harness.Cluster, protocol string) (int, map[string]map[string]string) {
	t.Helper()
	all := map[string]map[string]string{}
	blocked := 0
	for _, n := range c.Nodes {
		st, err := n.SpanningTree(context.Background(), protocol, "obr0")
		if err != nil {
			t.Fatal(err)
		}
		all[n.Name] = st
		for port, s := range st {
			if !strings.HasPrefix(port, "gre") && !strings.HasPrefix(port, "vxlan") {
				continue
			}
			if strings.HasSuffix(s, "/blocking") || strings.HasSuffix(s, "/discarding") {
				blocked++
			}
		}
	}
	return blocked, all
}

// settled reports whether no port is still listening/learning (STP) or, for RSTP, no port is
// in a transitional state.
func settled(st map[string]map[string]string) bool {
	for _, ports := range st {
		for _, s := range ports {
			if strings.HasSuffix(s, "/listening") || strings.HasSuffix(s, "/learning") {
				return false
			}
		}
	}
	return true
}
