package controllers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// installPolicies creates every object of config/policy/*.yaml (except the kustomization).
func (e *opEnv) installPolicies() {
	e.t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "policy", "*.yaml"))
	if err != nil || len(files) == 0 {
		e.t.Fatalf("no policy files (%v)", err)
	}
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				e.t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := e.c.Create(e.ctx(), u); err != nil {
				e.t.Fatalf("%s: creating %s %s: %v", f, u.GetKind(), u.GetName(), err)
			}
			n++
		}
	}
	if n < 2 {
		e.t.Fatalf("expected a policy and its binding, created %d objects", n)
	}
}

// agentClient acts as the agent ServiceAccount of the operator's namespace, with the node
// claim a pod-bound token of an agent on node carries (node == "": a token without one).
func (e *opEnv) agentClient(node string) client.Client {
	e.t.Helper()
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + e.ns + ":" + AgentName,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"},
	}
	if node != "" {
		cfg.Impersonate.Extra = map[string][]string{"authentication.kubernetes.io/node-name": {node}}
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// writeReady updates a NodeSubnet's status through c (Ready=True) and returns the API error.
func (e *opEnv) writeReady(c client.Client, name string) error {
	s := &v1.NodeSubnet{}
	if err := c.Get(e.ctx(), client.ObjectKey{Name: name}, s); err != nil {
		return err
	}
	meta.SetStatusCondition(&s.Status.Conditions, cond(v1.ConditionReady, "True", "Applied"))
	s.Status.TunnelCount++
	return c.Status().Update(e.ctx(), s)
}

// TestAdmissionPolicyAgentOnlyWritesOwnNodeSubnet installs config/policy into the API server
// and acts as agents through impersonation (user, groups and the node claim of a pod-bound
// ServiceAccount token), with the agent RBAC the operator creates.
func TestAdmissionPolicyAgentOnlyWritesOwnNodeSubnet(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	e.installPolicies()
	nodeA, nodeB := e.nodeName(0)+"-a", e.nodeName(1)+"-b"
	e.createCluster(nil)
	e.mustNode(nodeA, "192.168.9.10", nil)
	e.mustNode(nodeB, "192.168.9.11", nil)
	e.waitSubnets(30*time.Second, nodeA, nodeB)

	agentA := e.agentClient(nodeA)
	// The operator's RBAC and the policy both take effect asynchronously: wait until agent A
	// can write its own status, and until writing B's is refused by the policy.
	e.eventually(30*time.Second, "agent A to write its own NodeSubnet status", func() error {
		return e.writeReady(agentA, nodeA)
	})
	var denied error
	e.eventually(30*time.Second, "the policy to refuse agent A writing node B's status", func() error {
		denied = e.writeReady(agentA, nodeB)
		if denied == nil {
			return errors.New("admitted")
		}
		if !strings.Contains(denied.Error(), "own node") {
			return fmt.Errorf("refused, but not by the policy yet: %v", denied)
		}
		return nil
	})
	if !apierrors.IsForbidden(denied) {
		t.Errorf("denial is not Forbidden: %v", denied)
	}
	t.Logf("agent on %s writing %s's status: %v", nodeA, nodeB, denied)
	if s, _ := e.subnet(nodeB); meta.FindStatusCondition(s.Status.Conditions, v1.ConditionReady) != nil {
		t.Errorf("node B's status was changed: %+v", s.Status)
	}

	// Agent B may write its own; A still may.
	if err := e.writeReady(e.agentClient(nodeB), nodeB); err != nil {
		t.Errorf("agent B writing its own status: %v", err)
	}
	if err := e.writeReady(agentA, nodeA); err != nil {
		t.Errorf("agent A writing its own status again: %v", err)
	}
	// A credential without a node claim is refused.
	if err := e.writeReady(e.agentClient(""), nodeA); err == nil || !strings.Contains(err.Error(), "names no node") {
		t.Errorf("agent without a node claim: %v, want the policy's refusal", err)
	}
	// The spec is out of reach (RBAC: the agent has no update on nodesubnets).
	s, err := e.subnet(nodeA)
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.NodeIP = "192.168.9.99"
	if err := agentA.Update(e.ctx(), s); !apierrors.IsForbidden(err) {
		t.Errorf("agent A updating its NodeSubnet spec: %v, want Forbidden", err)
	}
	// Other identities are not affected by the policy: the operator (admin here) writes B's status.
	if err := e.writeReady(e.c, nodeB); err != nil {
		t.Errorf("admin writing node B's status: %v", err)
	}
}
