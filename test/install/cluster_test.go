package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ovsmesh/ovsmesh/internal/testbed"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// cluster is a bare API server: etcd + kube-apiserver with nothing of ovsmesh installed (unlike
// testenv.Start, which installs the CRDs), so that the install under test is what creates
// every object.
type cluster struct {
	cfg        *rest.Config
	kubeconfig string // admin (system:masters) kubeconfig for kubectl
	assets     string // KUBEBUILDER_ASSETS: etcd, kube-apiserver, kubectl, kube-controller-manager
	dir        string // per-test temporary directory
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"kubectl", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			t.Fatalf("KUBEBUILDER_ASSETS=%s has no %s: run `make testbed`", assets, b)
		}
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting etcd + kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	t.Logf("API server up in %s at %s", time.Since(start).Round(time.Millisecond), cfg.Host)
	admin, err := env.AddUser(envtest.User{Name: "install-test-admin-" + testbed.RunID(4), Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{cfg: cfg, assets: assets, dir: t.TempDir()}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(c.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// client returns a fresh client: its REST mapper discovers the API as it is now, including
// CRDs installed a moment ago.
func (c *cluster) client(t *testing.T) client.Client {
	t.Helper()
	cl, err := client.New(c.cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// kubectl runs the real kubectl from the repository root and returns its output.
func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.tryKubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if args[0] != "kustomize" { // its output is the manifests: too long to log
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), strings.TrimSpace(out))
	}
	return out
}

func (c *cluster) tryKubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.assets, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Dir = testenv.RepoRoot()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// startNamespaceController runs kube-controller-manager with only the namespace controller:
// without it a deleted Namespace stays Terminating forever (its "kubernetes" finalizer is
// that controller's), so `kubectl delete` of a namespace could not finish. The process is
// killed by PID when the test ends; its log is shown if the test failed.
func (c *cluster) startNamespaceController(t *testing.T) {
	t.Helper()
	logPath := filepath.Join(c.dir, "kube-controller-manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.assets, "kube-controller-manager"),
		"--kubeconfig="+c.kubeconfig,
		"--controllers=namespace",
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kube-controller-manager: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
		if t.Failed() {
			raw, _ := os.ReadFile(logPath)
			if len(raw) > 4000 {
				raw = raw[len(raw)-4000:]
			}
			t.Logf("kube-controller-manager log (tail):\n%s", raw)
		}
	})
	select {
	case err := <-exited:
		raw, _ := os.ReadFile(logPath)
		t.Fatalf("kube-controller-manager exited at once: %v\n%s", err, raw)
	case <-time.After(2 * time.Second):
	}
}

// decodeObjects reads a YAML stream (kubectl kustomize output) into objects.
func decodeObjects(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decoding objects: %v", err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func describe(u client.Object) string {
	gvk := u.GetObjectKind().GroupVersionKind()
	if u.GetNamespace() != "" {
		return fmt.Sprintf("%s %s/%s", gvk.Kind, u.GetNamespace(), u.GetName())
	}
	return fmt.Sprintf("%s %s", gvk.Kind, u.GetName())
}

// get fetches the live version of u. found is false when the object or its kind does not exist.
func get(ctx context.Context, cl client.Client, u *unstructured.Unstructured) (live *unstructured.Unstructured, found bool, err error) {
	live = &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	err = cl.Get(ctx, client.ObjectKeyFromObject(u), live)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, false, nil
	}
	return live, err == nil, err
}

// waitGone waits until none of objs exists any more.
func waitGone(t *testing.T, c *cluster, objs []*unstructured.Unstructured, timeout time.Duration) {
	t.Helper()
	var left []string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cl := c.client(t)
		left = nil
		for _, u := range objs {
			_, found, err := get(ctx, cl, u)
			if err != nil {
				return false, err
			}
			if found {
				left = append(left, describe(u))
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Fatalf("still there after %s: %v (%v)", timeout, left, err)
	}
}

// waitEstablished waits until every CRD named is Established, i.e. its API is served.
func waitEstablished(t *testing.T, c *cluster, names []string) {
	t.Helper()
	cl := c.client(t)
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := cl.Get(ctx, client.ObjectKey{Name: n}, crd); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			established := false
			for _, cond := range crd.Status.Conditions {
				established = established || (cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue)
			}
			if !established {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("CRDs %v not Established: %v", names, err)
	}
}

// admitsPod asks the API server whether a pod with this spec may run in namespace ns: a
// server-side dry-run create goes through validation and every admission plugin, Pod
// Security admission included, and stores nothing.
func admitsPod(ctx context.Context, cl client.Client, ns string, spec corev1.PodSpec) error {
	pod := &corev1.Pod{Spec: *spec.DeepCopy()}
	pod.Namespace, pod.Name = ns, "admission-check-"+testbed.RunID(4)
	return cl.Create(ctx, pod, client.DryRunAll)
}
