// Command ovsmesh-demo runs a local multi-node Kubernetes cluster on this machine with real
// kubelets, containerd and kube-proxy (internal/kubenodes), installs ovsmesh on it as a user
// would (kubectl apply -k config/default, then a NetworkCluster), runs a Deployment of test
// pods spread over every node, pings every pair and shows the result with kubectl and
// ovs-vsctl. It keeps running until Ctrl-C, or with --once checks, prints a summary and
// tears down.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ovsmesh/ovsmesh/internal/kubenodes"
	"github.com/ovsmesh/ovsmesh/internal/logging"
)

//go:embed networkcluster.yaml
var sample []byte

func main() {
	nodes := flag.Int("nodes", 3, "number of nodes")
	once := flag.Bool("once", false, "check, print a summary, tear down and exit (non-zero on failure)")
	sampleFile := flag.String("f", "", "NetworkCluster to apply instead of the embedded default")
	flag.Parse()

	// The control plane (internal/testenv, envtest) logs through controller-runtime's logger.
	// Without one, controller-runtime prints a "log.SetLogger(...) was never called" stack
	// trace 30 s in, which a newcomer reads as a crash. Warnings and errors still show.
	if l, err := logging.New(logging.Options{Level: "warn", Encoding: "console"}); err == nil {
		ctrllog.SetLogger(l)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, *nodes, *once, *sampleFile))
}

func run(ctx context.Context, nodes int, once bool, sampleFile string) int {
	t0 := time.Now()
	nc := string(sample)
	if sampleFile != "" {
		b, err := os.ReadFile(sampleFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		nc = string(b)
	} else {
		sampleFile = "the embedded default (cmd/ovsmesh-demo/networkcluster.yaml)"
	}
	c, err := kubenodes.Start(ctx, kubenodes.Options{Nodes: nodes, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer func() {
		fmt.Println("▶ tearing down (pods, kubelets, containerd, OVS, namespaces, cgroups, control plane) ...")
		c.Close()
		fmt.Println("✓ torn down")
	}()

	var pods []kubenodes.Pod
	var tApplied time.Time
	var upIn time.Duration
	steps := []struct {
		name string
		fn   func() error
	}{
		{"kubectl apply --server-side -k config/default (CRDs, RBAC, the operator Deployment)", func() error {
			out, err := c.InstallOperator(ctx)
			fmt.Print(indent(out))
			return err
		}},
		{"wait for the operator pod", func() error { return c.WaitOperator(ctx, 2*time.Minute) }},
		{"kubectl apply the NetworkCluster: " + sampleFile, func() error {
			tApplied = time.Now()
			out, err := c.KubectlStdin(ctx, nc, "apply", "--server-side", "-f", "-")
			fmt.Print(indent(out))
			return err
		}},
		{"kubectl wait --for=condition=Available networkcluster/default, and every node Ready", func() error {
			if _, err := c.Kubectl(ctx, "wait", "--for=condition=Available", "networkcluster/default", "--timeout=180s"); err != nil {
				return err
			}
			if err := c.WaitNodesReady(ctx, 2*time.Minute); err != nil {
				return err
			}
			upIn = time.Since(tApplied)
			fmt.Printf("  network up on %d nodes %s after the NetworkCluster was applied\n", len(c.Nodes), upIn.Round(time.Millisecond))
			return nil
		}},
		{fmt.Sprintf("run a Deployment of %d test pods spread over the nodes (containerd calls the ovsmesh CNI plugin)", 2*nodes), func() error {
			if _, err := c.KubectlStdin(ctx, kubenodes.Workload("web", "default", 2*nodes), "apply", "-f", "-"); err != nil {
				return err
			}
			var err error
			pods, err = c.WaitPods(ctx, "default", "app=web", 2*nodes, 2*time.Minute)
			for _, p := range pods {
				fmt.Printf("  pod %-24s on %s: %s\n", p.Name, p.Node, p.IP)
			}
			return err
		}},
		{"every pod pings every other pod (kubectl exec)", func() error {
			if f := c.PingAll(ctx, pods, 0); len(f) > 0 {
				return fmt.Errorf("%d of %d pods could not reach every other: %v", len(f), len(pods), f)
			}
			fmt.Printf("  %d/%d pod pairs answer\n", len(pods)*(len(pods)-1), len(pods)*(len(pods)-1))
			return nil
		}},
	}
	for _, s := range steps {
		if err := c.Step(s.name, s.fn); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			show(ctx, c)
			return 1
		}
	}
	show(ctx, c)
	fmt.Printf("\nSUMMARY: %d real nodes (kubelet + containerd + kube-proxy), %d pods, %d/%d pod pairs answer; network up %s after the NetworkCluster; whole demo %s\n",
		len(c.Nodes), len(pods), len(pods)*(len(pods)-1), len(pods)*(len(pods)-1), upIn.Round(time.Millisecond), time.Since(t0).Round(time.Second))
	if once {
		return 0
	}
	n1 := c.Nodes[0]
	fmt.Printf(`
The cluster keeps running until Ctrl-C. Inspect it from another shell:
  export KUBECONFIG=%[2]s
  %[1]s get nodes,pods -A -o wide
  %[1]s get networkclusters,nodesubnets -o wide
  %[1]s logs -n ovsmesh-system daemonset/ovsmesh-agent
  %[1]s exec %[3]s -- /podtool ping -c 3 %[4]s
  ovs-vsctl --db=unix:%[5]s show          # %[6]s's OVS
  nsenter --net=/run/netns/%[7]s ip -br addr     # %[6]s's network namespace
Logs and node directories: %[8]s
`, c.KubectlBin, c.Kubeconfig, pods[0].Name, pods[len(pods)-1].IP, n1.Socket(), n1.Name, n1.NS, c.Dir)
	<-ctx.Done()
	fmt.Println()
	return 0
}

func show(ctx context.Context, c *kubenodes.Cluster) {
	for _, args := range [][]string{{"get", "nodes,pods", "-A", "-o", "wide"}, {"get", "networkclusters,nodesubnets", "-o", "wide"}} {
		out, err := c.Kubectl(ctx, args...)
		if err != nil {
			out += err.Error() + "\n"
		}
		fmt.Printf("\n$ kubectl %s\n%s", strings.Join(args, " "), out)
	}
	if len(c.Nodes) == 0 {
		return
	}
	n := c.Nodes[0]
	out, _ := n.Vsctl(ctx, "show")
	fmt.Printf("\n$ ovs-vsctl show   # on %s\n%s", n.Name, out)
}

func indent(s string) string {
	if s = strings.TrimRight(s, "\n"); s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}
