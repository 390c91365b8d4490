package kubenodes

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/images"
	"github.com/ovsmesh/ovsmesh/internal/proc"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// InstallOperator installs ovsmesh the way the README tells a user to: the kustomize tree
// config/default (CRDs, RBAC, the operator Deployment), server-side applied. The operator
// image it names is the one imported into every node.
func (c *Cluster) InstallOperator(ctx context.Context) (string, error) {
	return c.Kubectl(ctx, "apply", "--server-side", "-k", filepath.Join(testenv.RepoRoot(), "config", "default"))
}

// WaitOperator waits until the operator's Deployment has an available replica.
func (c *Cluster) WaitOperator(ctx context.Context, timeout time.Duration) error {
	_, err := c.Kubectl(ctx, "-n", OperatorNamespace, "rollout", "status", "deployment/ovsmesh-controller-manager",
		"--timeout="+timeout.String())
	return err
}

// NetworkCluster is the NetworkCluster the tests and benchmarks apply: GRE, the userspace
// datapath (this machine has no OVS kernel module) and short STP timers, so the mesh
// converges in seconds.
const NetworkCluster = `apiVersion: network.ovsmesh.io/v1alpha1
kind: NetworkCluster
metadata: {name: default}
spec:
  tunnel: {type: GRE}
  loopPrevention: {protocol: STP, helloTime: 1, maxAge: 6, forwardDelay: 4}
  datapathType: netdev
`

// OperatorNamespace is the namespace config/default installs into.
const OperatorNamespace = "ovsmesh-system"

// NodeSummary is a node's name and its Ready condition (status, and reason: message).
type NodeSummary struct {
	Name   string
	Ready  bool
	Reason string
}

// NodeStatus lists the Nodes with their Ready condition.
func (c *Cluster) NodeStatus(ctx context.Context) ([]NodeSummary, error) {
	out, err := c.Kubectl(ctx, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var l struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				Conditions []struct{ Type, Status, Reason, Message string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		return nil, err
	}
	var res []NodeSummary
	for _, it := range l.Items {
		s := NodeSummary{Name: it.Metadata.Name}
		for _, cond := range it.Status.Conditions {
			if cond.Type == "Ready" {
				s.Ready, s.Reason = cond.Status == "True", cond.Reason+": "+cond.Message
			}
		}
		res = append(res, s)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res, nil
}

// WaitNodesReady waits until every node of the cluster is Ready, and says which are not.
func (c *Cluster) WaitNodesReady(ctx context.Context, timeout time.Duration) error {
	var last []NodeSummary
	err := proc.WaitFor(ctx, timeout, 250*time.Millisecond, func() bool {
		s, err := c.NodeStatus(ctx)
		if err != nil || len(s) < len(c.Nodes) {
			return false
		}
		last = s
		for _, n := range s {
			if !n.Ready {
				return false
			}
		}
		return true
	})
	if err != nil {
		var bad []string
		for _, n := range last {
			if !n.Ready {
				bad = append(bad, n.Name+" ("+n.Reason+")")
			}
		}
		return fmt.Errorf("nodes not Ready: %s: %w", strings.Join(bad, ", "), err)
	}
	return nil
}

// Pod is a pod as the tests need it.
type Pod struct {
	Name, Namespace, Node, IP, Phase string
	Ready                            bool
}

// Pods lists the pods matching selector in namespace.
func (c *Cluster) Pods(ctx context.Context, namespace, selector string) ([]Pod, error) {
	out, err := c.Kubectl(ctx, "get", "pods", "-n", namespace, "-l", selector, "-o", "json")
	if err != nil {
		return nil, err
	}
	var l struct {
		Items []struct {
			Metadata struct {
				Name, Namespace   string
				DeletionTimestamp *string
			}
			Spec   struct{ NodeName string }
			Status struct {
				Phase, PodIP string
				Conditions   []struct{ Type, Status string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		return nil, err
	}
	var pods []Pod
	for _, it := range l.Items {
		if it.Metadata.DeletionTimestamp != nil {
			continue
		}
		p := Pod{Name: it.Metadata.Name, Namespace: it.Metadata.Namespace, Node: it.Spec.NodeName, IP: it.Status.PodIP, Phase: it.Status.Phase}
		for _, cond := range it.Status.Conditions {
			if cond.Type == "Ready" {
				p.Ready = cond.Status == "True"
			}
		}
		pods = append(pods, p)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Node+pods[i].Name < pods[j].Node+pods[j].Name })
	return pods, nil
}

// WaitPods waits until want pods matching selector are Ready, and returns them.
func (c *Cluster) WaitPods(ctx context.Context, namespace, selector string, want int, timeout time.Duration) ([]Pod, error) {
	var pods []Pod
	err := proc.WaitFor(ctx, timeout, 250*time.Millisecond, func() bool {
		ps, err := c.Pods(ctx, namespace, selector)
		if err != nil {
			return false
		}
		pods = ps
		ready := 0
		for _, p := range ps {
			if p.Ready && p.IP != "" {
				ready++
			}
		}
		return ready == want && len(ps) == want
	})
	if err != nil {
		return pods, fmt.Errorf("%d pods %s in %s Ready, want %d (%+v): %w", len(pods), selector, namespace, want, pods, err)
	}
	return pods, nil
}

// TestPodImage is the test pod image as imported into every node.
var TestPodImage = images.TestPod.Repository + ":" + ImageTag

// Workload is a Deployment of the test-pod image serving HTTP on 8080, spread evenly over
// the nodes (but never on the nodes in avoid), with a Service in front of it.
func Workload(name, namespace string, replicas int, avoid ...string) string {
	affinity := ""
	if len(avoid) > 0 {
		affinity = fmt.Sprintf(`
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: kubernetes.io/hostname, operator: NotIn, values: [%s]}]`, strings.Join(avoid, ", "))
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 2%[5]s
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: %[1]s}}}
      containers:
      - name: web
        image: %[4]s
        imagePullPolicy: IfNotPresent
        args: ["serve", ":8080"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  selector: {app: %[1]s}
  ports: [{port: 80, targetPort: 8080}]
`, name, namespace, replicas, TestPodImage, affinity)
}

// PodExec runs podtool (or another command of the test image) in a pod with kubectl exec.
func (c *Cluster) PodExec(ctx context.Context, p Pod, args ...string) (string, error) {
	return c.Kubectl(ctx, append([]string{"exec", "-n", p.Namespace, p.Name, "--", "/podtool"}, args...)...)
}

// PingAll has every pod ping every other pod (kubectl exec of podtool ping, the sources in
// parallel) and returns the failures. A source that fails is tried again until within has
// passed: a spanning tree that re-forms after a join stalls traffic for a few seconds.
func (c *Cluster) PingAll(ctx context.Context, pods []Pod, within time.Duration) []string {
	deadline := time.Now().Add(within)
	failed := make([]string, len(pods))
	var wg sync.WaitGroup
	for i, src := range pods {
		var targets []string
		for _, dst := range pods {
			if dst.Name != src.Name {
				targets = append(targets, dst.IP)
			}
		}
		if len(targets) == 0 {
			continue
		}
		wg.Add(1)
		go func(i int, src Pod) {
			defer wg.Done()
			for {
				out, err := c.PodExec(ctx, src, append([]string{"ping", "-c", "3", "-i", "200ms", "-W", "1s"}, targets...)...)
				if err == nil {
					failed[i] = ""
					return
				}
				failed[i] = fmt.Sprintf("%s (%s on %s): %v %s", src.Name, src.IP, src.Node, err, strings.TrimSpace(out))
				if time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
			}
		}(i, src)
	}
	wg.Wait()
	var res []string
	for _, f := range failed {
		if f != "" {
			res = append(res, f)
		}
	}
	return res
}

// WaitAvailable waits until the NetworkCluster's status is current (observedGeneration),
// Available, and counts every node of the cluster ready.
func (c *Cluster) WaitAvailable(ctx context.Context, timeout time.Duration) error {
	var last string
	err := proc.WaitFor(ctx, timeout, 250*time.Millisecond, func() bool {
		out, err := c.Kubectl(ctx, "get", "networkcluster", "default", "-o", "json")
		if err != nil {
			return false
		}
		var nc struct {
			Metadata struct{ Generation int64 }
			Status   struct {
				ObservedGeneration     int64
				NodesReady, NodesTotal int
				Conditions             []struct{ Type, Status, Reason, Message string }
			}
		}
		if json.Unmarshal([]byte(out), &nc) != nil {
			return false
		}
		last = fmt.Sprintf("%+v", nc.Status)
		avail := false
		for _, cond := range nc.Status.Conditions {
			avail = avail || cond.Type == "Available" && cond.Status == "True"
		}
		return avail && nc.Status.ObservedGeneration == nc.Metadata.Generation &&
			nc.Status.NodesReady == len(c.Nodes) && nc.Status.NodesTotal == len(c.Nodes)
	})
	if err != nil {
		return fmt.Errorf("NetworkCluster not Available with %d nodes ready (status %s): %w", len(c.Nodes), last, err)
	}
	return nil
}
