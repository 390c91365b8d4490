package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// upstreamPlugins is the containernetworking-plugins release whose host-local claims spec
// 1.1.0 (Debian's 1.1.1 stops at 1.0.0).
const upstreamPlugins = "v1.9.1"

var (
	upstreamOnce sync.Once
	upstreamBin  string
	upstreamErr  error
)

// upstreamHostLocal builds host-local from the upstream release once and caches it outside
// the repository, keyed by version, so only the first run pays (and needs the module proxy).
func upstreamHostLocal(t *testing.T) string {
	t.Helper()
	upstreamOnce.Do(func() { upstreamBin, upstreamErr = buildUpstreamHostLocal() })
	if upstreamErr != nil {
		t.Fatalf("building host-local %s (the first run needs the Go module proxy; the binary is cached afterwards): %v", upstreamPlugins, upstreamErr)
	}
	return upstreamBin
}

func buildUpstreamHostLocal() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, "ovsmesh-test", "host-local-"+upstreamPlugins)
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	// A throwaway module, so the project's go.mod/go.sum stay untouched.
	dir, err := os.MkdirTemp("", "ovsmesh-hostlocal-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	gomod := fmt.Sprintf("module hostlocalbuild\n\ngo 1.24\n\nrequire github.com/containernetworking/plugins %s\n", upstreamPlugins)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", out+".tmp", "github.com/containernetworking/plugins/plugins/ipam/host-local")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, b)
	}
	return out, os.Rename(out+".tmp", out)
}

// TestUpstreamHostLocalAtSpec11 runs the plugin against an IPAM plugin that speaks 1.1.0
// (no version downgrade) and checks that GC still releases stale addresses: upstream
// host-local acknowledges GC without doing anything, so the plugin's store-based release
// must run for it too.
func TestUpstreamHostLocalAtSpec11(t *testing.T) {
	path := t.TempDir()
	if err := os.Symlink(filepath.Join(binDir, config.PluginType), filepath.Join(path, config.PluginType)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(upstreamHostLocal(t), filepath.Join(path, "host-local")); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, nodeOpts{})
	n.cni = newCNI([]string{path}, n.cacheDir)
	l := n.list(n.input("1.1.0"))

	var versions []string
	n.do(func() error {
		info, err := n.cni.GetVersionInfo(ctx(t), "host-local")
		if err == nil {
			versions = info.SupportedVersions()
		}
		return err
	})
	if len(versions) == 0 || versions[len(versions)-1] != "1.1.0" {
		t.Fatalf("upstream host-local supports %v; this test needs one that claims 1.1.0", versions)
	}

	keep, stale := n.newPod(t), n.newPod(t)
	ipKeep := podIP(t, n.mustAdd(t, l, keep))
	n.mustAdd(t, l, stale)
	t.Cleanup(func() { _ = n.del(t, l, keep.rt()) })
	if err := n.check(t, l, keep.rt()); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := n.status(t, l); err != nil {
		t.Errorf("STATUS: %v", err)
	}

	forgetful := newCNI([]string{path}, t.TempDir())
	err := n.try(func() error {
		return forgetful.GCNetworkList(ctx(t), l, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep.id, IfName: "eth0"}}})
	})
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := n.reservations(l.Name); len(got) != 1 || got[ipKeep.String()] != keep.id+"/eth0" {
		t.Errorf("reservations after GC %v, want only %s", got, ipKeep)
	}
	if podHasLink(t, stale, "eth0") {
		t.Error("the stale attachment still has eth0")
	}
}
