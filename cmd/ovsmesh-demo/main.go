// Command ovsmesh-demo runs a local multi-node ovsmesh cluster on this machine (network
// namespaces, one OVS per node, a real API server), applies the NetworkCluster, attaches two
// pods per node, pings every pair and shows the result with kubectl and ovs-vsctl. It keeps
// running until Ctrl-C, or with --once checks, prints a summary and tears down.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/harness"
)

//go:embed networkcluster.yaml
var sample []byte

func main() {
	nodes := flag.Int("nodes", 3, "number of nodes")
	once := flag.Bool("once", false, "check, print a summary, tear down and exit (non-zero on failure)")
	sampleFile := flag.String("f", "", "NetworkCluster to apply instead of the embedded default")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, *nodes, *once, *sampleFile))
}

func run(ctx context.Context, nodes int, once bool, sampleFile string) int {
	t0 := time.Now()
	c, err := harness.Start(ctx, harness.Options{Nodes: nodes, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer func() {
		fmt.Println("▶ tearing down (namespaces, OVS, API server) ...")
		c.Close()
		fmt.Println("✓ torn down")
	}()

	if sampleFile == "" {
		sampleFile = filepath.Join(c.Dir, "networkcluster.yaml")
		if err := os.WriteFile(sampleFile, sample, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	var pods []*harness.Pod
	var results []harness.PairResult
	steps := []struct {
		name string
		fn   func() error
	}{
		{"kubectl apply -f " + sampleFile, func() error {
			out, err := c.Kubectl(ctx, "apply", "--server-side", "-f", sampleFile)
			fmt.Print(out)
			return err
		}},
		{"kubectl wait --for=condition=Available networkcluster/default", func() error {
			out, err := c.Kubectl(ctx, "wait", "--for=condition=Available", "networkcluster/default", "--timeout=180s")
			fmt.Print(out)
			return err
		}},
		{fmt.Sprintf("create 2 pods on each of %d nodes (CNI ADD through libcni)", nodes), func() error {
			for _, n := range c.Nodes {
				for _, s := range []string{"a", "b"} {
					p, err := c.AddPod(ctx, n, n.Name+s)
					if err != nil {
						return err
					}
					fmt.Printf("  pod %-8s on %s: %s\n", p.Name, n.Name, p.IP)
					pods = append(pods, p)
				}
			}
			return nil
		}},
		{"ping every pod pair", func() error {
			results = harness.PingAll(ctx, pods, 60*time.Second)
			if f := harness.Failed(results); len(f) > 0 {
				return fmt.Errorf("%d of %d pairs failed: %v", len(f), len(results), f)
			}
			fmt.Printf("  %d/%d pod pairs ping OK\n", len(results), len(results))
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
	fmt.Printf("\nSUMMARY: %d nodes, %d pods, %d/%d pod pairs ping OK, up in %s\n",
		len(c.Nodes), len(pods), len(results)-len(harness.Failed(results)), len(results), time.Since(t0).Round(time.Second))
	if once {
		return 0
	}
	n1 := c.Nodes[0]
	fmt.Printf(`
The cluster keeps running until Ctrl-C. Inspect it from another shell:
  %[1]s --kubeconfig %[2]s get networkclusters,nodesubnets -o wide
  %[1]s --kubeconfig %[2]s get nodesubnet %[3]s -o yaml
  ovs-vsctl --db=unix:%[4]s show
  ovs-appctl -t %[5]s stp/show
  ip netns exec %[6]s ping %[7]s        # from pod %[8]s to pod %[9]s
Logs: %[10]s (agent.log, ovs-vswitchd.log per node; operator.log)
`, c.KubectlBin, c.Kubeconfig, n1.Name, n1.Socket(), n1.VswitchdCtl(), pods[0].NS, pods[len(pods)-1].IP, pods[0].Name, pods[len(pods)-1].Name, c.Dir)
	<-ctx.Done()
	fmt.Println()
	return 0
}

func show(ctx context.Context, c *harness.Cluster) {
	out, _ := c.Kubectl(ctx, "get", "networkclusters,nodesubnets", "-o", "wide")
	fmt.Printf("\n$ kubectl get networkclusters,nodesubnets -o wide\n%s", out)
	if len(c.Nodes) == 0 {
		return
	}
	n := c.Nodes[0]
	out, _ = n.Vsctl(ctx, "show")
	fmt.Printf("\n$ ovs-vsctl show   # on %s\n%s", n.Name, out)
	out, _ = n.Appctl(ctx, "stp/show", "obr0")
	if out == "" {
		out, _ = n.Appctl(ctx, "rstp/show", "obr0")
	}
	fmt.Printf("\n$ ovs-appctl stp/show obr0   # on %s\n%s", n.Name, out)
}
