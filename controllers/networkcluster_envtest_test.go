package controllers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

func (e *opEnv) daemonSet() (*appsv1.DaemonSet, error) {
	ds := &appsv1.DaemonSet{}
	return ds, e.c.Get(e.ctx(), client.ObjectKey{Namespace: e.ns, Name: AgentName}, ds)
}

func TestAgentDaemonSetAndRBAC(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	nc := e.createCluster(func(s *v1alpha1.NetworkClusterSpec) {
		s.AgentImage = "registry.example/ovsmesh-agent:v1"
		s.NodeSelector = map[string]string{"pool": "net"}
	})
	var ds *appsv1.DaemonSet
	e.eventually(20*time.Second, "the agent DaemonSet", func() (err error) { ds, err = e.daemonSet(); return err })
	nc = e.cluster()
	if !slices.Contains(nc.Finalizers, v1alpha1.FinalizerCleanup) {
		t.Errorf("finalizers %v, want %s", nc.Finalizers, v1alpha1.FinalizerCleanup)
	}

	owner := metav1.GetControllerOf(ds)
	if owner == nil || owner.Kind != "NetworkCluster" || owner.UID != nc.UID {
		t.Errorf("DaemonSet controller %+v", owner)
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.ServiceAccountName != AgentName {
		t.Errorf("hostNetwork %v serviceAccount %q", pod.HostNetwork, pod.ServiceAccountName)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v, want one that tolerates every taint", pod.Tolerations)
	}
	if pod.NodeSelector["pool"] != "net" || pod.NodeSelector[corev1.LabelOSStable] != "linux" {
		t.Errorf("nodeSelector %v", pod.NodeSelector)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
		t.Fatalf("containers %d init %d", len(pod.Containers), len(pod.InitContainers))
	}
	agent, install := pod.Containers[0], pod.InitContainers[0]
	if agent.Image != "registry.example/ovsmesh-agent:v1" || install.Image != agent.Image {
		t.Errorf("images %s / %s", agent.Image, install.Image)
	}
	if !slices.Contains(install.Command, "install-cni") {
		t.Errorf("init container command %v", install.Command)
	}
	sc := agent.SecurityContext
	if sc == nil || sc.Privileged == nil || !*sc.Privileged || sc.Capabilities == nil ||
		!slices.Contains(sc.Capabilities.Add, "NET_ADMIN") || !slices.Contains(sc.Capabilities.Add, "NET_RAW") || !slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") {
		t.Errorf("agent securityContext %+v", sc)
	}
	var nodeNameFromSpec bool
	for _, env := range agent.Env {
		if env.Name == "NODE_NAME" && env.ValueFrom != nil && env.ValueFrom.FieldRef != nil && env.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeNameFromSpec = true
		}
	}
	if !nodeNameFromSpec {
		t.Errorf("agent env %+v: NODE_NAME must come from spec.nodeName", agent.Env)
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounted := func(c corev1.Container) map[string]bool {
		m := map[string]bool{}
		for _, vm := range c.VolumeMounts {
			m[hostPaths[vm.Name]] = true
		}
		return m
	}
	for _, p := range []string{"/var/run/openvswitch", "/etc/cni/net.d", "/opt/cni/bin", "/run/netns"} {
		if !mounted(agent)[p] {
			t.Errorf("agent does not mount host %s (volumes %v)", p, hostPaths)
		}
	}
	if !mounted(install)["/opt/cni/bin"] {
		t.Errorf("install-cni does not mount host /opt/cni/bin")
	}

	sa := &corev1.ServiceAccount{}
	if err := e.c.Get(e.ctx(), client.ObjectKey{Namespace: e.ns, Name: AgentName}, sa); err != nil {
		t.Error(err)
	}
	cr := &rbacv1.ClusterRole{}
	if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentName}, cr); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"network.ovsmesh.io/networkclusters":    {"get", "list", "watch"},
		"network.ovsmesh.io/nodesubnets":        {"get", "list", "watch"},
		"network.ovsmesh.io/nodesubnets/status": {"patch", "update"},
		"/nodes":                                {"get", "list", "watch"},
		// Its Node's NetworkUnavailable (narrowed by the admission policy), its Events, and
		// the metrics endpoint's TokenReview and SubjectAccessReview.
		"/nodes/status":                             {"patch"},
		"events.k8s.io/events":                      {"create", "patch"},
		"authentication.k8s.io/tokenreviews":        {"create"},
		"authorization.k8s.io/subjectaccessreviews": {"create"},
	}
	got := map[string][]string{}
	for _, r := range cr.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				verbs := append([]string(nil), r.Verbs...)
				slices.Sort(verbs)
				got[g+"/"+res] = verbs
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("agent ClusterRole rules\n got %v\nwant %v", got, want)
	}
	crb := &rbacv1.ClusterRoleBinding{}
	if err := e.c.Get(e.ctx(), client.ObjectKey{Name: AgentName}, crb); err != nil {
		t.Fatal(err)
	}
	if crb.RoleRef.Name != AgentName || len(crb.Subjects) != 1 || crb.Subjects[0].Name != AgentName || crb.Subjects[0].Namespace != e.ns {
		t.Errorf("binding %+v %+v", crb.RoleRef, crb.Subjects)
	}

	// A spec change reaches the DaemonSet: new image, new node selector.
	patch := client.MergeFrom(nc.DeepCopy())
	nc.Spec.AgentImage = "registry.example/ovsmesh-agent:v2"
	nc.Spec.NodeSelector = map[string]string{"pool": "mesh"}
	if err := e.c.Patch(e.ctx(), nc, patch); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "the new image in the DaemonSet", func() error {
		ds, err := e.daemonSet()
		if err != nil {
			return err
		}
		p := ds.Spec.Template.Spec
		if p.Containers[0].Image != "registry.example/ovsmesh-agent:v2" || p.InitContainers[0].Image != "registry.example/ovsmesh-agent:v2" {
			return fmt.Errorf("images %s %s", p.Containers[0].Image, p.InitContainers[0].Image)
		}
		if p.NodeSelector["pool"] != "mesh" {
			return fmt.Errorf("nodeSelector %v", p.NodeSelector)
		}
		return nil
	})

	// Someone edits the DaemonSet by hand: the operator puts its fields back.
	ds, _ = e.daemonSet()
	ds.Spec.Template.Spec.HostNetwork = false
	if err := e.c.Update(e.ctx(), ds); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "hostNetwork restored", func() error {
		ds, err := e.daemonSet()
		if err != nil {
			return err
		}
		if !ds.Spec.Template.Spec.HostNetwork {
			return fmt.Errorf("hostNetwork still false")
		}
		return nil
	})
}

// TestStatusAggregation simulates the agents' reports and checks the NetworkCluster status,
// then shows `kubectl get networkclusters,nodesubnets` with the printer columns filled in.
func TestStatusAggregation(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	e.createCluster(nil)
	names := []string{e.nodeName(0), e.nodeName(1), e.nodeName(2)}
	for i, n := range names {
		e.mustNode(n, fmt.Sprintf("192.168.7.%d", 10+i), nil)
	}
	e.waitSubnets(30*time.Second, names...)
	condIs := func(typ, status, reason string) func() error {
		return func() error {
			c := meta.FindStatusCondition(e.cluster().Status.Conditions, typ)
			if c == nil || string(c.Status) != status || c.Reason != reason {
				return fmt.Errorf("%s = %+v, want %s/%s", typ, c, status, reason)
			}
			return nil
		}
	}
	e.eventually(20*time.Second, "waiting for agents", condIs(v1alpha1.ConditionProgressing, "True", ReasonWaitingForAgents))
	if err := condIs(v1alpha1.ConditionAvailable, "False", ReasonNodesNotReady)(); err != nil {
		t.Error(err)
	}

	gen := e.cluster().Generation
	report := func(name string, gen int64, ready string, reason string) {
		e.setAgentStatus(name, func(st *v1alpha1.NodeSubnetStatus) {
			st.ObservedGeneration = gen
			st.TunnelCount = int32(len(names) - 1)
			st.MTU = 1458
			meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, ready, reason))
		})
	}
	report(names[0], gen, "True", "Applied")
	report(names[1], gen, "True", "Applied")
	e.eventually(20*time.Second, "nodesReady 2", func() error {
		st := e.cluster().Status
		if st.NodesReady != 2 || st.NodesTotal != 3 || st.ObservedGeneration != gen {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	report(names[2], gen, "False", "OVSUnavailable")
	e.eventually(20*time.Second, "Degraded NodesNotReady", condIs(v1alpha1.ConditionDegraded, "True", ReasonNodesNotReady))
	if c := meta.FindStatusCondition(e.cluster().Status.Conditions, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, names[2]) || !strings.Contains(c.Message, "OVSUnavailable") {
		t.Errorf("Degraded message %q should name %s and its reason", c.Message, names[2])
	}
	report(names[2], gen, "True", "Applied")
	e.eventually(20*time.Second, "Available", condIs(v1alpha1.ConditionAvailable, "True", ReasonAllNodesReady))
	e.eventually(20*time.Second, "Progressing done", condIs(v1alpha1.ConditionProgressing, "False", ReasonAsExpected))
	st := e.cluster().Status
	if st.NodesReady != 3 || st.SubnetsUsed != 3 || st.SubnetsFree != 253 {
		t.Errorf("status %+v", st)
	}
	if err := condIs(v1alpha1.ConditionDegraded, "False", ReasonAsExpected)(); err != nil {
		t.Error(err)
	}

	// A live spec change (GRE → VXLAN): a new generation that no agent has applied yet.
	nc := e.cluster()
	patch := client.MergeFrom(nc.DeepCopy())
	nc.Spec.Tunnel.Type = v1alpha1.TunnelVXLAN
	if err := e.c.Patch(e.ctx(), nc, patch); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "rolling out", condIs(v1alpha1.ConditionProgressing, "True", ReasonRollingOut))
	st = e.cluster().Status
	if st.NodesReady != 0 || st.ObservedGeneration != nc.Generation {
		t.Errorf("after the spec change: %+v (generation %d)", st, nc.Generation)
	}
	if err := condIs(v1alpha1.ConditionAvailable, "True", ReasonAllNodesReady)(); err != nil {
		t.Errorf("the old configuration still carries traffic: %v", err)
	}
	for _, n := range names {
		report(n, nc.Generation, "True", "Applied")
	}
	e.eventually(20*time.Second, "rolled out", condIs(v1alpha1.ConditionProgressing, "False", ReasonAsExpected))
	if st := e.cluster().Status; st.NodesReady != 3 {
		t.Errorf("nodesReady %d after the rollout", st.NodesReady)
	}

	out := kubectlGet(t, e.Env, "networkclusters,nodesubnets")
	t.Logf("kubectl get networkclusters,nodesubnets:\n%s", out)
	for _, want := range []string{"VXLAN", "10.244.0.0/16", "True", names[0], "10.244.0.0/24", "192.168.7.10"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl output lacks %q", want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "networkcluster.network.ovsmesh.io/default") {
			f := strings.Fields(line)
			// NAME TUNNEL CLUSTER-CIDR READY NODES AVAILABLE AGE
			if len(f) != 7 || f[3] != "3" || f[4] != "3" || f[5] != "True" {
				t.Errorf("NetworkCluster row %q: want Ready 3, Nodes 3, Available True", line)
			}
		}
	}
}

// kubectlGet runs the real kubectl of the test bed against the env (as an admin user).
func kubectlGet(t *testing.T, env *testenv.Env, what string) string {
	t.Helper()
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("no kubectl in %s: run `make testbed`", assets)
	}
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "--kubeconfig", path, "get", what).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get %s: %v\n%s", what, err, out)
	}
	return string(out)
}
