package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// TestAgainstAPIServer runs the plugin against a real API server holding what an operator
// and three agents would have written: node-a reports its tunnel to node-b Down, node-c's
// agent cannot reach ovsdb-server and its heartbeat expired, and there are Events and an
// agent pod for node-c. The envtest is stopped (and everything in it gone) when the test ends.
func TestAgainstAPIServer(t *testing.T) {
	env := testenv.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seed(ctx, t, env.Client)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("status", func(t *testing.T) {
		out := run(t, "--kubeconfig", kubeconfig, "status")
		t.Logf("kubectl ovsmesh status:\n%s", out)
		for _, want := range []string{
			"NetworkCluster default: GRE tunnels, STP, cluster CIDR 10.244.0.0/16, MTU automatic",
			"nodes ready 2/3, subnets 3 used, 253 free",
			"Degraded     True   NodesNotReady",
			"node-c  192.168.1.12  False  OVSUnavailable",
			"  node-a  —       Down    ok",
			"  node-b  ok      —       ok",
			"  node-c  ?       ?       —",
			"EXPIRED",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("status output lacks %q", want)
			}
		}
		if strings.Contains(out, "\x1b[") || strings.Contains(out, "Could not read") {
			t.Error("escape codes into a buffer, or something unreadable as admin")
		}
	})

	t.Run("status -o json", func(t *testing.T) {
		var r StatusReport
		if err := json.Unmarshal([]byte(run(t, "--kubeconfig", kubeconfig, "status", "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		checkStatusJSON(t, r)
	})

	t.Run("diagnose", func(t *testing.T) {
		out := run(t, "--kubeconfig", kubeconfig, "diagnose", "node-c")
		t.Logf("kubectl ovsmesh diagnose node-c:\n%s", out)
		for _, want := range []string{
			"Node node-c: subnet 10.244.2.0/24, gateway 10.244.2.1, node IP 192.168.1.12",
			"Ready:           False OVSUnavailable",
			"not connected to ovsdb-server",
			"ovsdb-server:    unknown — the agent's heartbeat expired",
			"MTU:             1458 in use, GRE overhead 42 bytes; spec.mtu is automatic: 1458 = underlay 1500 − 42 (GRE)",
			"Heartbeat:       expired",
			"ovsmesh-agent-c1  Running, not ready, 3 restarts",
			"last termination: ovsmesh-agent: OOMKilled, exit code 137",
			"Warning  DuplicateNodeIP  Node/node-c",
			"Drift:           " + DriftNone,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("diagnose output lacks %q", want)
			}
		}
		if strings.Contains(out, "about node-a") || strings.Contains(out, "ovsmesh-agent-a1") {
			t.Error("diagnose node-c shows node-a's event or pod")
		}
	})

	t.Run("diagnose a peer's view", func(t *testing.T) {
		out := run(t, "--kubeconfig", kubeconfig, "diagnose", "node-b")
		t.Logf("kubectl ovsmesh diagnose node-b:\n%s", out)
		for _, want := range []string{"Seen from peers:\n  node-a  Down  BFD: no answer", "ovs-vswitchd:    ok", "Heartbeat:       no Lease"} {
			if !strings.Contains(out, want) {
				t.Errorf("diagnose output lacks %q", want)
			}
		}
	})

	t.Run("diagnose -o json", func(t *testing.T) {
		var r DiagnoseReport
		if err := json.Unmarshal([]byte(run(t, "--kubeconfig", kubeconfig, "diagnose", "node-b", "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		if r.Ready == nil || r.Ready.Reason != v1alpha1.ReasonApplied || r.OVSDB.State != "ok" || r.Vswitchd.State != "ok" ||
			r.Heartbeat.State != HeartbeatNone || len(r.SeenByPeers) != 1 || r.SeenByPeers[0].Node != "node-a" || len(r.Events) != 0 {
			t.Errorf("node-b: %+v", r)
		}
	})

	t.Run("diagnose unknown node", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := Run(ctx, Env{Out: &out, Err: &errOut, Getenv: func(string) string { return "" }, Now: time.Now},
			[]string{"--kubeconfig", kubeconfig, "diagnose", "node-z"})
		if code == 0 || !strings.Contains(errOut.String(), `no Node or NodeSubnet named "node-z"`) {
			t.Errorf("exit %d, stderr %q", code, errOut.String())
		}
	})

	// A user who may read the cluster-scoped objects but nothing in the operator's namespace
	// still gets the matrix, with the heartbeats unknown and the reason said.
	t.Run("no rights in the namespace", func(t *testing.T) {
		viewer := restrictedUser(ctx, t, env)
		out := run(t, "--kubeconfig", viewer, "status")
		for _, want := range []string{"  node-a  —       Down    ok", "Could not read", "heartbeat Leases in namespace ovsmesh-system: forbidden"} {
			if !strings.Contains(out, want) {
				t.Errorf("restricted status lacks %q:\n%s", want, out)
			}
		}
		out = run(t, "--kubeconfig", viewer, "diagnose", "node-c")
		for _, want := range []string{"Heartbeat:       unknown", "agent pods in namespace ovsmesh-system: forbidden", "DuplicateNodeIP"} {
			if !strings.Contains(out, want) {
				t.Errorf("restricted diagnose lacks %q:\n%s", want, out)
			}
		}
	})

	// The real binary, so that its flags and main are proven too.
	t.Run("binary", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "kubectl-ovsmesh")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ovsmesh/ovsmesh/cmd/kubectl-ovsmesh")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		cmd := exec.CommandContext(ctx, bin, "status", "--kubeconfig", kubeconfig, "-n", "ovsmesh-system", "-o", "json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, stderr.String())
		}
		var r StatusReport
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		checkStatusJSON(t, r)
		// Piped, the text has no escape codes even with a colour-capable TERM.
		cmd = exec.CommandContext(ctx, bin, "status", "--kubeconfig", kubeconfig)
		cmd.Env = append(os.Environ(), "TERM=xterm-256color")
		if out, err = cmd.Output(); err != nil || strings.Contains(string(out), "\x1b[") || !strings.Contains(string(out), "node-c") {
			t.Errorf("piped text: %v\n%q", err, out)
		}
	})
}

func checkStatusJSON(t *testing.T, r StatusReport) {
	t.Helper()
	if !r.Cluster.Found || r.Cluster.NodesReady != 2 || len(r.Nodes) != 3 || len(r.Unreadable) != 0 {
		t.Errorf("report %+v", r)
	}
	want := [][]string{{"self", "Down", "ok"}, {"ok", "self", "ok"}, {"?", "?", "self"}}
	if r.Matrix.Reduced || len(r.Matrix.Cells) != 3 || strings.Join(r.Matrix.Cells[0], ",") != strings.Join(want[0], ",") ||
		strings.Join(r.Matrix.Cells[2], ",") != strings.Join(want[2], ",") {
		t.Errorf("matrix %+v", r.Matrix)
	}
	if hb := r.Nodes[0].Heartbeat; hb.State != HeartbeatLive {
		t.Errorf("node-a heartbeat %+v", hb)
	}
	if hb := r.Nodes[2].Heartbeat; hb.State != HeartbeatExpired || hb.AgeSeconds < 290 {
		t.Errorf("node-c heartbeat %+v", hb)
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Out: &out, Err: &errOut, Getenv: func(string) string { return "" }, Now: time.Now}
	if code := Run(context.Background(), env, args); code != 0 {
		t.Fatalf("kubectl ovsmesh %v: exit %d: %s", args, code, errOut.String())
	}
	return out.String()
}

// seed writes the objects an operator and three agents would have, statuses included.
func seed(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: defaultNamespace}}))
	nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName}}
	must(c.Create(ctx, nc))
	now := metav1.Now()
	nc.Status = v1alpha1.NetworkClusterStatus{NodesTotal: 3, NodesReady: 2, SubnetsUsed: 3, SubnetsFree: 253, Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "AsExpected", Message: "2 of 3 nodes ready", LastTransitionTime: now},
		{Type: v1alpha1.ConditionProgressing, Status: metav1.ConditionFalse, Reason: "AsExpected", Message: "", LastTransitionTime: now},
		{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: "NodesNotReady", Message: "node-c: OVSUnavailable", LastTransitionTime: now}}}
	must(c.Status().Update(ctx, nc))

	subnets := []v1alpha1.NodeSubnet{subnet("node-a", 0, v1alpha1.ReasonApplied, down("node-b")), subnet("node-b", 1, v1alpha1.ReasonApplied), subnet("node-c", 2, v1alpha1.ReasonOVSUnavailable)}
	subnets[2].Status.Conditions[0].Message = "not connected to ovsdb-server at unix:/run/openvswitch/db.sock"
	for i := range subnets {
		ns := subnets[i].DeepCopy()
		ns.Status.Conditions[0].LastTransitionTime = now
		st := ns.Status
		must(c.Create(ctx, ns))
		ns.Status = st
		must(c.Status().Update(ctx, ns))
		must(c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}}))
	}

	for node, renewed := range map[string]time.Time{"node-a": time.Now(), "node-c": time.Now().Add(-5 * time.Minute)} {
		l := lease(node, renewed)
		l.Namespace = defaultNamespace
		must(c.Create(ctx, &l))
	}

	for node, name := range map[string]string{"node-c": "ovsmesh-agent-c1", "node-a": "ovsmesh-agent-a1"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: defaultNamespace, Name: name, Labels: map[string]string{labelName: agentName}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "ovsmesh-agent", Image: "ovsmesh-agent:test"}}}}
		must(c.Create(ctx, pod))
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "ovsmesh-agent", Image: "ovsmesh-agent:test", RestartCount: 3,
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, FinishedAt: now}}}}}
		must(c.Status().Update(ctx, pod))
	}

	for node, note := range map[string]string{"node-c": "node-c has the InternalIP 192.168.1.12 of node-a", "node-a": "about node-a"} {
		must(c.Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, GenerateName: node + "-"},
			EventTime: metav1.NewMicroTime(time.Now()), ReportingController: "network.ovsmesh.io/operator", ReportingInstance: "operator-1",
			Action: "Mesh", Reason: "DuplicateNodeIP", Type: corev1.EventTypeWarning, Note: note,
			Regarding: corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node}}))
	}
}

// restrictedUser is a kubeconfig for a user who may read the ovsmesh API, Nodes and Events
// but nothing in the operator's namespace.
func restrictedUser(ctx context.Context, t *testing.T, env *testenv.Env) string {
	t.Helper()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ovsmesh-viewer"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"networkclusters", "nodesubnets"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ovsmesh-viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "viewer"}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	u, err := env.AddUser(envtest.User{Name: "viewer"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "viewer-kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
