package realnode

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovsmesh/ovsmesh/internal/kubenodes"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// kubectlPlugin runs `kubectl ovsmesh` (the plugin binary, built from the tree) against the
// real cluster: status and diagnose read what the agents report, trace runs
// `ovsmesh-agent trace` in the agent pods through the API server's exec, as kubectl exec does.
func kubectlPlugin(ctx context.Context, t *testing.T, c *kubenodes.Cluster, web []kubenodes.Pod) {
	bin := filepath.Join(t.TempDir(), "kubectl-ovsmesh")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kubectl-ovsmesh")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plugin := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl ovsmesh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	out := plugin("status")
	t.Logf("kubectl ovsmesh status:\n%s", out)
	for _, n := range c.Nodes {
		if !strings.Contains(out, n.Name) {
			t.Errorf("status does not show %s", n.Name)
		}
	}
	out = plugin("diagnose", c.Nodes[0].Name)
	t.Logf("kubectl ovsmesh diagnose %s:\n%s", c.Nodes[0].Name, out)
	if !strings.Contains(out, "True Applied") {
		t.Errorf("diagnose %s does not say Ready True Applied", c.Nodes[0].Name)
	}

	// A pair on two nodes, and a pair on one.
	var a, b, same *kubenodes.Pod
	for i := range web {
		for j := range web {
			if a == nil && web[i].Node != web[j].Node {
				a, b = &web[i], &web[j]
			}
		}
	}
	for i := range web {
		if a != nil && same == nil && web[i].Node == a.Node && web[i].Name != a.Name {
			same = &web[i]
		}
	}
	if a == nil {
		t.Fatal("no two web pods on different nodes")
	}
	ref := func(p *kubenodes.Pod) string { return p.Namespace + "/" + p.Name }
	out = plugin("trace", ref(a), ref(b))
	t.Logf("kubectl ovsmesh trace %s %s:\n%s", ref(a), ref(b), out)
	var rep struct {
		Verdict, Why string
		Hops         []struct{ Node, InPort, Next string }
	}
	if err := json.Unmarshal([]byte(plugin("trace", ref(a), ref(b), "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != "delivered" || len(rep.Hops) < 2 || rep.Hops[0].Node != a.Node || rep.Hops[len(rep.Hops)-1].Node != b.Node {
		t.Errorf("trace %s → %s: %+v, want delivered from %s to %s", ref(a), ref(b), rep, a.Node, b.Node)
	}
	if rep.Hops[0].InPort != "vobr0" || !strings.HasPrefix(rep.Hops[len(rep.Hops)-1].InPort, "gre-") && !strings.HasPrefix(rep.Hops[len(rep.Hops)-1].InPort, "vxlan-") {
		t.Errorf("trace hops enter by %q … %q, want the veth, then a tunnel", rep.Hops[0].InPort, rep.Hops[len(rep.Hops)-1].InPort)
	}
	if same != nil {
		if out := plugin("trace", ref(a), ref(same)); !strings.Contains(out, "Verdict: local") {
			t.Errorf("trace between two pods on %s:\n%s", a.Node, out)
		}
	}
}
