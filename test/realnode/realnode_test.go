package realnode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/kubenodes"
	"github.com/ovsmesh/ovsmesh/internal/proc"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

const agentSelector = "app.kubernetes.io/name=ovsmesh-agent"

// TestRealNodes installs ovsmesh on a 3-node cluster as a user does and takes it through a
// cluster's life: pods on every node reach each other, an agent pod is deleted and the agent
// DaemonSet rolled to another image under traffic (nothing lost), a 4th node joins, a pod
// reaches a ClusterIP Service backed by pods on other nodes, deleted pods give their
// addresses back, and the uninstall leaves nothing of ovsmesh on any node. Each step builds
// on the one before, so the first failure ends the test.
func TestRealNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := kubenodes.Start(ctx, kubenodes.Options{Nodes: 3, Out: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, c)
		}
		c.Close()
	})
	var web []kubenodes.Pod
	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"install", func(t *testing.T) { web = install(ctx, t, c) }},
		{"agent pod deleted under traffic", func(t *testing.T) { deleteAgentUnderTraffic(ctx, t, c, web) }},
		{"agent DaemonSet rolled to another image under traffic", func(t *testing.T) { rollAgents(ctx, t, c, web) }},
		{"fourth node joins", func(t *testing.T) { web = joinNode(ctx, t, c) }},
		{"ClusterIP Service backed by pods on other nodes", func(t *testing.T) { clusterIP(ctx, t, c, web) }},
		{"kubectl ovsmesh status, diagnose and trace", func(t *testing.T) { kubectlPlugin(ctx, t, c, web) }},
		{"deleted pods release their addresses", func(t *testing.T) { deletePods(ctx, t, c, web) }},
		{"uninstall leaves nothing", func(t *testing.T) { uninstall(ctx, t, c) }},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			return
		}
	}
}

func install(ctx context.Context, t *testing.T, c *kubenodes.Cluster) []kubenodes.Pod {
	if out, err := c.InstallOperator(ctx); err != nil {
		t.Fatalf("kubectl apply -k config/default: %v\n%s", err, out)
	}
	if err := c.WaitOperator(ctx, 2*time.Minute); err != nil {
		t.Fatalf("operator Deployment: %v", err)
	}
	// Before the network exists no node is Ready: that is the state a pod network installs into.
	st, err := c.NodeStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st {
		if n.Ready {
			t.Errorf("%s is Ready before any pod network was installed", n.Name)
		}
	}
	t0 := time.Now()
	if out, err := c.KubectlStdin(ctx, kubenodes.NetworkCluster, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply NetworkCluster: %v\n%s", err, out)
	}
	if _, err := c.Kubectl(ctx, "wait", "--for=condition=Available", "networkcluster/default", "--timeout=180s"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodesReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("NetworkCluster applied -> Available and every node Ready: %s", time.Since(t0).Round(time.Millisecond))
	agents, err := c.WaitPods(ctx, kubenodes.OperatorNamespace, agentSelector, len(c.Nodes), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		// The agent pod's init container installed the plugins into the node's /opt/cni/bin and
		// the agent wrote the conflist into its /etc/cni/net.d (hostPath volumes, per node).
		for _, f := range []string{filepath.Join(n.CNIBinDir(), "ovsmesh"), filepath.Join(n.CNIBinDir(), "ovsmesh-host-local"), filepath.Join(n.CNIBinDir(), "ovsmesh-portmap")} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%s: %v", n.Name, err)
			}
		}
		if m, _ := filepath.Glob(filepath.Join(n.CNIConfDir(), "*ovsmesh*")); len(m) != 1 {
			t.Errorf("%s: CNI config %v, want one ovsmesh conflist", n.Name, m)
		}
	}
	if len(agents) != len(c.Nodes) {
		t.Fatalf("%d agent pods for %d nodes", len(agents), len(c.Nodes))
	}
	t1 := time.Now()
	if out, err := c.KubectlStdin(ctx, kubenodes.Workload("web", "default", 2*len(c.Nodes)), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	web, err := c.WaitPods(ctx, "default", "app=web", 2*len(c.Nodes), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods Running with an address in %s", len(web), time.Since(t1).Round(time.Millisecond))
	checkSpread(t, c, web)
	if f := c.PingAll(ctx, web, 0); len(f) > 0 {
		t.Fatalf("pods that could not reach every other: %v", f)
	}
	return web
}

// checkSpread requires pods on every node, each with an address from its node's subnet.
func checkSpread(t *testing.T, c *kubenodes.Cluster, pods []kubenodes.Pod) {
	t.Helper()
	on := map[string]int{}
	for _, p := range pods {
		on[p.Node]++
		if !strings.HasPrefix(p.IP, "10.244.") {
			t.Errorf("pod %s on %s has address %q, not from 10.244.0.0/16", p.Name, p.Node, p.IP)
		}
	}
	for _, n := range c.Nodes {
		if on[n.Name] == 0 {
			t.Errorf("no pod on %s: %v", n.Name, on)
		}
	}
}

// traffic pings every pod in targets from src every 20 ms for d and reports per target.
func traffic(ctx context.Context, c *kubenodes.Cluster, src kubenodes.Pod, targets []kubenodes.Pod, d time.Duration) <-chan []string {
	done := make(chan []string, 1)
	var ips []string
	for _, p := range targets {
		if p.Name != src.Name {
			ips = append(ips, p.IP)
		}
	}
	go func() {
		out, err := c.PodExec(ctx, src, append([]string{"ping", "-i", "20ms", "-d", d.String(), "-W", "1s", "-max-lost", "0"}, ips...)...)
		var problems []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct {
				Target         string
				Sent, Received int
			}
			if json.Unmarshal([]byte(l), &r) == nil && (r.Sent == 0 || r.Sent != r.Received) {
				problems = append(problems, fmt.Sprintf("%s: %d of %d answered", r.Target, r.Received, r.Sent))
			}
		}
		if err != nil && len(problems) == 0 {
			problems = append(problems, fmt.Sprintf("%v: %s", err, out))
		}
		done <- problems
	}()
	return done
}

func podOn(pods []kubenodes.Pod, node string) kubenodes.Pod {
	for _, p := range pods {
		if p.Node == node {
			return p
		}
	}
	return kubenodes.Pod{}
}

func deleteAgentUnderTraffic(ctx context.Context, t *testing.T, c *kubenodes.Cluster, web []kubenodes.Pod) {
	n1 := c.Nodes[0].Name
	agents, err := c.Pods(ctx, kubenodes.OperatorNamespace, agentSelector)
	if err != nil {
		t.Fatal(err)
	}
	old := podOn(agents, n1)
	const window = 25 * time.Second
	t0 := time.Now()
	res := traffic(ctx, c, podOn(web, n1), web, window)
	time.Sleep(2 * time.Second)
	if out, err := c.Kubectl(ctx, "delete", "pod", "-n", old.Namespace, old.Name, "--wait=true"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := proc.WaitFor(ctx, time.Minute, 250*time.Millisecond, func() bool {
		ps, err := c.Pods(ctx, kubenodes.OperatorNamespace, agentSelector)
		p := podOn(ps, n1)
		return err == nil && p.Name != "" && p.Name != old.Name && p.Ready
	}); err != nil {
		t.Fatalf("no new agent pod on %s: %v", n1, err)
	}
	if err := waitNodeSubnetReady(ctx, c, n1); err != nil {
		t.Fatal(err)
	}
	replaced := time.Since(t0)
	if replaced > window-3*time.Second {
		t.Fatalf("the agent was replaced %s into a %s traffic window: too late to tell", replaced, window)
	}
	if p := <-res; len(p) > 0 {
		t.Fatalf("packets lost while the agent pod on %s was replaced: %v", n1, p)
	}
	t.Logf("agent pod on %s deleted and replaced (Ready again %s into the window); %s of 20 ms pings to %d pods: none lost", n1, replaced.Round(time.Millisecond), window, len(web)-1)
}

func waitNodeSubnetReady(ctx context.Context, c *kubenodes.Cluster, node string) error {
	_, err := c.Kubectl(ctx, "wait", "--for=condition=Ready", "nodesubnet/"+node, "--timeout=60s")
	return err
}

func rollAgents(ctx context.Context, t *testing.T, c *kubenodes.Cluster, web []kubenodes.Pod) {
	image := "ghcr.io/ovsmesh/ovsmesh-agent:" + kubenodes.AltAgentTag
	const window = 40 * time.Second
	t0 := time.Now()
	res := traffic(ctx, c, podOn(web, c.Nodes[0].Name), web, window)
	time.Sleep(2 * time.Second)
	if out, err := c.Kubectl(ctx, "patch", "networkcluster", "default", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"agentImage":%q}}`, image)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := proc.WaitFor(ctx, 2*time.Minute, 250*time.Millisecond, func() bool {
		out, err := c.Kubectl(ctx, "get", "pods", "-n", kubenodes.OperatorNamespace, "-l", agentSelector, "-o",
			`jsonpath={range .items[*]}{.spec.containers[0].image}{" "}{.status.containerStatuses[0].ready}{"\n"}{end}`)
		if err != nil {
			return false
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			if l != image+" true" {
				return false
			}
		}
		return len(lines) == len(c.Nodes)
	}); err != nil {
		t.Fatalf("agent pods not all on %s: %v", image, err)
	}
	if _, err := c.Kubectl(ctx, "-n", kubenodes.OperatorNamespace, "rollout", "status", "daemonset/ovsmesh-agent", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if err := waitNodeSubnetReady(ctx, c, n.Name); err != nil {
			t.Fatal(err)
		}
	}
	rolled := time.Since(t0)
	if rolled > window-3*time.Second {
		t.Fatalf("the rollout ended %s into a %s traffic window: too late to tell", rolled, window)
	}
	if p := <-res; len(p) > 0 {
		t.Fatalf("packets lost during the agent rollout: %v", p)
	}
	t.Logf("agent DaemonSet rolled to %s on %d nodes in %s; %s of 20 ms pings: none lost", image, len(c.Nodes), rolled.Round(time.Millisecond), window)
}

func joinNode(ctx context.Context, t *testing.T, c *kubenodes.Cluster) []kubenodes.Pod {
	n4, err := c.AddNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := c.WaitNodesReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitAvailable(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s registered -> Ready, and the NetworkCluster Available with every node: %s", n4.Name, time.Since(t0).Round(time.Millisecond))
	if out, err := c.Kubectl(ctx, "scale", "deployment/web", "--replicas", fmt.Sprint(2*len(c.Nodes))); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	web, err := c.WaitPods(ctx, "default", "app=web", 2*len(c.Nodes), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	checkSpread(t, c, web)
	// The new tunnel ports change the spanning tree (the root may move to the new node): pairs
	// that do not answer at once get 30 s.
	if f := c.PingAll(ctx, web, 30*time.Second); len(f) > 0 {
		t.Fatalf("after %s joined, pods that could not reach every other: %v", n4.Name, f)
	}
	return web
}

func clusterIP(ctx context.Context, t *testing.T, c *kubenodes.Cluster, web []kubenodes.Pod) {
	n1 := c.Nodes[0].Name
	if out, err := c.KubectlStdin(ctx, kubenodes.Workload("remote", "default", 3, n1), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	remote, err := c.WaitPods(ctx, "default", "app=remote", 3, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range remote {
		if p.Node == n1 {
			t.Fatalf("pod %s of the remote Deployment runs on %s", p.Name, n1)
		}
		names[p.Name] = true
	}
	ip, err := c.Kubectl(ctx, "get", "service", "remote", "-o", "jsonpath={.spec.clusterIP}")
	if err != nil || !strings.HasPrefix(ip, "10.96.") {
		t.Fatalf("ClusterIP %q: %v", ip, err)
	}
	client := podOn(web, n1)
	answered := map[string]bool{}
	for i := 0; i < 12; i++ {
		out, err := c.PodExec(ctx, client, "get", "-retry-for", "10s", "http://"+ip+"/")
		if err != nil {
			t.Fatalf("pod %s on %s -> %s:80: %v %s", client.Name, n1, ip, err, out)
		}
		who := strings.Fields(out)
		if len(who) == 0 || !names[who[0]] {
			t.Fatalf("answer %q is from none of the Service's pods %v", out, names)
		}
		answered[who[0]] = true
	}
	t.Logf("pod on %s -> ClusterIP %s: 12 requests answered by %d of the %d endpoints on other nodes", n1, ip, len(answered), len(remote))
	if _, err := c.KubectlStdin(ctx, kubenodes.Workload("remote", "default", 3, n1), "delete", "-f", "-", "--wait=true"); err != nil {
		t.Fatal(err)
	}
}

func deletePods(ctx context.Context, t *testing.T, c *kubenodes.Cluster, web []kubenodes.Pod) {
	// host-local keeps one file per address it handed out, named by the address.
	held := func(p kubenodes.Pod) bool {
		for _, n := range c.Nodes {
			if n.Name == p.Node {
				m, _ := filepath.Glob(filepath.Join(n.IPAMDir(), "*", p.IP))
				return len(m) > 0
			}
		}
		return false
	}
	for _, p := range web {
		if !held(p) {
			t.Fatalf("pod %s's address %s is not in host-local's store on %s", p.Name, p.IP, p.Node)
		}
	}
	if _, err := c.Kubectl(ctx, "delete", "deployment", "web", "--wait=true"); err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitFor(ctx, time.Minute, 250*time.Millisecond, func() bool {
		ps, err := c.Pods(ctx, "default", "app=web")
		return err == nil && len(ps) == 0
	}); err != nil {
		t.Fatalf("web pods not gone: %v", err)
	}
	// The kubelet removes a pod's sandbox (and containerd runs CNI DEL) just after the pod is gone.
	if err := proc.WaitFor(ctx, time.Minute, 250*time.Millisecond, func() bool {
		for _, p := range web {
			if held(p) {
				return false
			}
		}
		return true
	}); err != nil {
		var still []string
		for _, p := range web {
			if held(p) {
				still = append(still, p.IP+" on "+p.Node)
			}
		}
		t.Fatalf("addresses still held after their pods were deleted: %v", still)
	}
	t.Logf("%d pods deleted: CNI DEL returned every address to host-local", len(web))
}

func uninstall(ctx context.Context, t *testing.T, c *kubenodes.Cluster) {
	if _, err := c.Kubectl(ctx, "delete", "networkcluster", "default", "--timeout=180s"); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Kubectl(ctx, "delete", "-k", filepath.Join(testenv.RepoRoot(), "config", "default"), "--timeout=120s"); err != nil {
		t.Fatalf("kubectl delete -k config/default: %v\n%s", err, out)
	}
	if err := proc.WaitFor(ctx, 2*time.Minute, 500*time.Millisecond, func() bool {
		out, err := c.Kubectl(ctx, "get", "namespace", kubenodes.OperatorNamespace, "--ignore-not-found")
		return err == nil && strings.TrimSpace(out) == ""
	}); err != nil {
		t.Fatalf("namespace %s still there: %v", kubenodes.OperatorNamespace, err)
	}
	if out, _ := c.Kubectl(ctx, "get", "pods", "-A", "-l", "app.kubernetes.io/part-of=ovsmesh", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("ovsmesh pods left: %s", out)
	}
	for _, n := range c.Nodes {
		for _, link := range []string{"kbr0", "obr0", "vkbr0", "vobr0"} {
			if _, err := n.Exec(ctx, "ip", "link", "show", link); err == nil {
				t.Errorf("%s: link %s left", n.Name, link)
			}
		}
		if out, _ := n.Exec(ctx, "ip", "-4", "route", "show", "10.244.0.0/16"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: route left: %s", n.Name, out)
		}
		if out, _ := n.Exec(ctx, "nft", "list", "tables"); strings.Contains(out, "ovsmesh") {
			t.Errorf("%s: nftables table left: %s", n.Name, out)
		}
		if out, err := n.Vsctl(ctx, "list-br"); err != nil || strings.Contains(out, "obr0") {
			t.Errorf("%s: OVS bridges %q (%v)", n.Name, out, err)
		}
		if m, _ := filepath.Glob(filepath.Join(n.CNIConfDir(), "*")); len(m) != 0 {
			t.Errorf("%s: CNI config left: %v", n.Name, m)
		}
		// The plugins install-cni brought go; the node's own loopback stays.
		if ents, _ := os.ReadDir(n.CNIBinDir()); len(ents) != 1 || ents[0].Name() != "loopback" {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s: /opt/cni/bin holds %v, want only the node's own loopback", n.Name, names)
		}
	}
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dump logs the tails of the logs that explain most failures.
func dump(t *testing.T, c *kubenodes.Cluster) {
	ctx := context.Background()
	out, _ := c.Kubectl(ctx, "get", "nodes,pods,networkclusters,nodesubnets", "-A", "-o", "wide")
	t.Logf("--- cluster ---\n%s", out)
	out, _ = c.Kubectl(ctx, "logs", "-n", kubenodes.OperatorNamespace, "deployment/ovsmesh-controller-manager", "--tail=30")
	t.Logf("--- operator log ---\n%s", out)
	out, _ = c.Kubectl(ctx, "logs", "-n", kubenodes.OperatorNamespace, "-l", agentSelector, "--tail=20", "--prefix")
	t.Logf("--- agent logs ---\n%s", out)
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(filepath.Join(n.Dir, "kubelet.log"))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		t.Logf("--- %s kubelet log ---\n%s", n.Name, strings.Join(lines, "\n"))
	}
}
