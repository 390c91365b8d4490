package kubenodes

import (
	"net"
	"strings"
	"testing"
)

// TestNodeBinDirSaysWhatToRun: without the node binaries the test bed refuses with the
// command that builds them, rather than failing later inside a node.
func TestNodeBinDirSaysWhatToRun(t *testing.T) {
	t.Setenv("OVSMESH_CACHE", t.TempDir())
	dir, err := NodeBinDir()
	if err == nil {
		t.Fatalf("an empty cache gave node binaries in %s", dir)
	}
	if !strings.Contains(err.Error(), "kubelet") || !strings.Contains(err.Error(), "make testbed") {
		t.Errorf("error %q does not name the missing binary and `make testbed`", err)
	}
}

// TestClaimUnderlayIsExclusive: two clusters never get the same underlay range while both
// run, and a released range can be claimed again.
func TestClaimUnderlayIsExclusive(t *testing.T) {
	a, la, err := claimUnderlay()
	if err != nil {
		t.Fatal(err)
	}
	b, lb, err := claimUnderlay()
	if err != nil {
		la.Close()
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("both clusters got %s", a)
	}
	la.Close()
	lb.Close()
	l, err := net.Listen("unix", "@ovsmesh-kubenodes-"+a)
	if err != nil {
		t.Fatalf("%s still held after its cluster released it: %v", a, err)
	}
	l.Close()
}
