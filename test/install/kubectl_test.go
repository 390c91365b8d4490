package install

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestKubectlInstallPath is the README's kubectl install, step by step, on an API server
// that starts with nothing of ovsmesh:
//
//  1. `kubectl apply --server-side -k config/default` creates every object config/default
//     renders — whatever it holds today (CRDs, RBAC, namespace, Deployment; the agents'
//     admission policy is the operator's to create, with the agents) — and the CRDs are served;
//  2. the operator pod would be admitted in its namespace (Pod Security: it uses hostNetwork);
//  3. applying again changes nothing and fails nothing;
//  4. the sample NetworkCluster applies and comes back defaulted;
//  5. `kubectl delete -k config/samples` then `kubectl delete -k config/default` remove
//     every object, the namespace included.
func TestKubectlInstallPath(t *testing.T) {
	c := startCluster(t)
	c.startNamespaceController(t)
	ctx := context.Background()

	objs := decodeObjects(t, c.kubectl(t, "kustomize", "config/default"))
	kinds := map[string]int{}
	var crdNames []string
	for _, u := range objs {
		kinds[u.GetKind()]++
		if u.GetKind() == "CustomResourceDefinition" {
			crdNames = append(crdNames, u.GetName())
		}
	}
	for _, k := range []string{"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"} {
		if kinds[k] == 0 {
			t.Fatalf("config/default renders no %s (kinds: %v)", k, kinds)
		}
	}
	t.Logf("config/default renders %d objects: %v", len(objs), kinds)

	// Nothing of it exists yet: what exists afterwards, kubectl created.
	cl := c.client(t)
	for _, u := range objs {
		if _, found, err := get(ctx, cl, u); err != nil || found {
			t.Fatalf("%s exists before the install (err %v): the test would prove nothing", describe(u), err)
		}
	}

	c.kubectl(t, "apply", "--server-side", "-k", "config/default")
	waitEstablished(t, c, crdNames)
	cl = c.client(t)
	var deploy *appsv1.Deployment
	for _, u := range objs {
		live, found, err := get(ctx, cl, u)
		if err != nil || !found {
			t.Fatalf("%s not there after kubectl apply (err %v)", describe(u), err)
		}
		if !appliedBy(live, "kubectl") {
			t.Errorf("%s has no server-side apply entry of kubectl in its managedFields", describe(u))
		}
		if u.GetKind() == "Deployment" {
			deploy = &appsv1.Deployment{}
			if err := cl.Get(ctx, client.ObjectKeyFromObject(u), deploy); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := admitsPod(ctx, cl, deploy.Namespace, deploy.Spec.Template.Spec); err != nil {
		t.Errorf("the operator pod would not be admitted in namespace %s: %v", deploy.Namespace, err)
	}

	// Server-side apply is idempotent: a second apply succeeds with no conflict.
	out := c.kubectl(t, "apply", "--server-side", "-k", "config/default")
	if strings.Contains(out, "conflict") {
		t.Errorf("second apply reported conflicts:\n%s", out)
	}

	c.kubectl(t, "apply", "--server-side", "-k", "config/samples")
	nc := &v1alpha1.NetworkCluster{}
	if err := c.client(t).Get(ctx, client.ObjectKey{Name: "default"}, nc); err != nil {
		t.Fatalf("the sample NetworkCluster is not there: %v", err)
	}
	if nc.Spec.Tunnel.VXLANPort != 4789 || nc.Spec.LoopPrevention.ForwardDelay != 15 || nc.Spec.AgentImage == "" {
		t.Errorf("the sample NetworkCluster was not defaulted by the installed CRD: %+v", nc.Spec)
	}

	// The documented uninstall order: the NetworkCluster first (its finalizer has the
	// operator clean the nodes), then the operator.
	c.kubectl(t, "delete", "-k", "config/samples", "--timeout=60s")
	c.kubectl(t, "delete", "-k", "config/default", "--timeout=120s")
	waitGone(t, c, append(objs, sampleObject()), 30*time.Second)
}

func sampleObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("NetworkCluster"))
	u.SetName("default")
	return u
}

// appliedBy tells whether manager owns fields of u through server-side apply.
func appliedBy(u *unstructured.Unstructured, manager string) bool {
	for _, m := range u.GetManagedFields() {
		if m.Manager == manager && m.Operation == "Apply" {
			return true
		}
	}
	return false
}
