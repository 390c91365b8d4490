package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/agent"
	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// buildAgent compiles this command into a temp dir.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ovsmesh-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCleanupSubcommand sets a node up with the agent's apply step, then runs the real
// binary's `cleanup` inside the node's namespace with no API server reachable: the bridge
// names come from the flags' defaults and everything goes.
func TestCleanupSubcommand(t *testing.T) {
	bin := buildAgent(t)
	n := nodetest.New(t, "ovsmt-cl-"+nodetest.RunID())
	n.Underlay("172.30.0.1")
	spec := v1alpha1.NetworkClusterSpec{DatapathType: v1alpha1.DatapathNetdev,
		LoopPrevention: v1alpha1.LoopPreventionSpec{ForwardDelay: 4, MaxAge: 6, HelloTime: 1}}
	subnets := []v1alpha1.NodeSubnet{
		{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: v1alpha1.NodeSubnetSpec{NodeName: "n1", CIDR: "10.244.1.0/24", Gateway: "10.244.1.1", NodeIP: "172.30.0.1"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Spec: v1alpha1.NodeSubnetSpec{NodeName: "n2", CIDR: "10.244.2.0/24", Gateway: "10.244.2.1", NodeIP: "172.30.0.2"}},
	}
	s, err := agent.Desired(spec, subnets, "n1", 1500)
	if err != nil {
		t.Fatal(err)
	}
	cniDir := filepath.Join(n.Dir, "net.d")
	a := &agent.Applier{Host: n.Host(), OVS: agent.NewOVSSide(n.Dial()), CNIConfDir: cniDir, Log: testr.New(t)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := a.Apply(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := n.Vsctl("list-br"); got != "obr0" {
		t.Fatalf("set-up: bridges %q", got)
	}

	cmd := exec.Command("ip", "netns", "exec", n.NS, bin, "cleanup", "--node-name=n1",
		"--ovsdb-socket="+n.Sock, "--cni-conf-dir="+cniDir, "--cni-bin-dir="+filepath.Join(n.Dir, "cni-bin"))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(n.Dir, "no-such-kubeconfig"), "KUBERNETES_SERVICE_HOST=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ovsmesh-agent cleanup: %v\n%s", err, out)
	}
	t.Logf("cleanup output:\n%s", out)

	if got := n.Vsctl("list-br"); got != "" {
		t.Errorf("bridges left: %q", got)
	}
	for name := range n.Links() {
		if name == "kbr0" || name == "vkbr0" || name == "vobr0" {
			t.Errorf("%s left", name)
		}
	}
	if o := nodetest.Sh(t, "ip", "netns", "exec", n.NS, "nft", "list", "tables"); strings.TrimSpace(o) != "" {
		t.Errorf("nft tables left: %q", o)
	}
	if _, err := os.Stat(filepath.Join(cniDir, agent.CNIConfFile)); !os.IsNotExist(err) {
		t.Errorf("CNI config left (%v)", err)
	}

	// Running it again is harmless.
	cmd = exec.Command("ip", "netns", "exec", n.NS, bin, "cleanup", "--node-name=n1", "--ovsdb-socket="+n.Sock, "--cni-conf-dir="+cniDir, "--cni-bin-dir="+filepath.Join(n.Dir, "cni-bin"))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(n.Dir, "no-such-kubeconfig"), "KUBERNETES_SERVICE_HOST=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("second cleanup: %v\n%s", err, out)
	}
}

func TestFlagErrors(t *testing.T) {
	bin := buildAgent(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "--node-name or NODE_NAME is required"},
		{[]string{"--node-name=x", "--no-such-flag"}, "flag provided but not defined"},
		{[]string{"cleanup", "--node-name=x", "extra"}, "unexpected arguments"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "NODE_NAME=")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: err %v, output:\n%s\nwant exit 2 and %q", tc.args, err, out, tc.want)
		}
	}
}
