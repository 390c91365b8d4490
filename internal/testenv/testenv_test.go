package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFailedStartLeavesNoControlPlane: a CRD the API server refuses fails Start after etcd
// and kube-apiserver are up; Start must stop them (it once left both running, and their
// directories in /tmp, for every such failure).
func TestFailedStartLeavesNoControlPlane(t *testing.T) {
	dir := t.TempDir()
	// A rule that does not compile: the API server rejects the CRD at creation.
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.ovsmesh.io}
spec:
  group: test.ovsmesh.io
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-validations:
        - rule: "self.nosuchfield.string()"
`
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(crd), 0o644); err != nil {
		t.Fatal(err)
	}
	before := controlPlanes(t)
	env, err := start(dir)
	if err == nil {
		_ = env.Stop()
		t.Fatal("a CRD the API server refuses was accepted")
	}
	if after := controlPlanes(t); after > before {
		t.Errorf("%d etcd/kube-apiserver processes after the failed start, %d before: %v", after, before, err)
	}
}

// controlPlanes counts the etcd and kube-apiserver processes this test process started
// (its children: other test runs on the machine do not count).
func controlPlanes(t *testing.T) int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "-f", "(etcd|kube-apiserver) ").Output()
	return len(strings.Fields(string(out)))
}
