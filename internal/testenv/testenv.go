// Package testenv starts a real etcd + kube-apiserver (controller-runtime envtest) with the
// ovsmesh CRDs installed, for tests. The binaries come from KUBEBUILDER_ASSETS, which
// `make test` sets to the cache filled by hack/testbed.sh; without it tests fail loudly rather
// than skip, so a green run always means the API server really ran.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// RepoRoot is the repository's top directory, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Scheme has the client-go types and the ovsmesh API.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// AssetsDir returns KUBEBUILDER_ASSETS or an error telling the reader how to get it.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		return "", fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, or build the control plane with `make testbed` and export KUBEBUILDER_ASSETS=$(make -s assets-dir)")
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("KUBEBUILDER_ASSETS=%s has no %s: run `make testbed`", dir, b)
		}
	}
	return dir, nil
}

// Env is a running API server with the ovsmesh CRDs.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
}

// Start starts etcd and kube-apiserver with the CRDs from config/crd/bases.
// The caller must call Stop.
func Start() (*Env, error) {
	return start(filepath.Join(RepoRoot(), "config", "crd", "bases"))
}

func start(crdDir string) (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	e := &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := e.Start()
	if err != nil {
		// Start leaves etcd and kube-apiserver running when a later step fails (a CRD the
		// API server refuses, say): stop them, or every such failure leaks a control plane.
		if serr := e.Stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the partly started envtest: %w", serr))
		}
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		_ = e.Stop()
		return nil, err
	}
	return &Env{Environment: e, Config: cfg, Client: c}, nil
}

// StartT starts an Env for one test and stops it when the test ends.
func StartT(t testing.TB) *Env {
	t.Helper()
	env, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return env
}
