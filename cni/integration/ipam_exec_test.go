package integration

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// TestIPAMExecCount counts how often the plugin execs the IPAM binary per verb, through a
// wrapper that logs CNI_COMMAND and execs Debian's host-local. At a version host-local
// speaks (1.0.0) each verb costs one exec; at 1.1.0, which it refuses, the plugin asks
// VERSION once and retries at 1.0.0, and the pod still gets its address.
func TestIPAMExecCount(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "calls")
	wrapper := "#!/bin/sh\necho \"$CNI_COMMAND\" >> " + logFile + "\nexec /usr/lib/cni/host-local \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "host-local"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(binDir, config.PluginType), filepath.Join(dir, config.PluginType)); err != nil {
		t.Fatal(err)
	}
	calls := func() []string {
		t.Helper()
		b, err := os.ReadFile(logFile)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		_ = os.Remove(logFile)
		return strings.Fields(string(b))
	}

	for _, tc := range []struct {
		version  string
		add, del []string
	}{
		{"1.0.0", []string{"ADD"}, []string{"DEL"}},
		{"1.1.0", []string{"ADD", "VERSION", "ADD"}, []string{"DEL", "VERSION", "DEL"}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			n := newNode(t, nodeOpts{})
			n.cni = newCNI([]string{dir}, n.cacheDir)
			l := n.list(n.input(tc.version))
			p := n.newPod(t)
			r := n.mustAdd(t, l, p)
			if len(r.IPs) != 1 || !n.subnet.Contains(netip.MustParseAddr(r.IPs[0].Address.IP.String())) {
				t.Fatalf("ADD at %s: IPs %v, want one address in %s", tc.version, r.IPs, n.subnet)
			}
			if got := calls(); !slices.Equal(got, tc.add) {
				t.Errorf("ADD at %s execs IPAM as %v, want %v", tc.version, got, tc.add)
			}
			if err := n.del(t, l, p.rt()); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if got := calls(); !slices.Equal(got, tc.del) {
				t.Errorf("DEL at %s execs IPAM as %v, want %v", tc.version, got, tc.del)
			}
		})
	}
}
