package testbed

import (
	"os"
	"os/exec"
	"testing"
)

// NetNS creates network namespace name (callers put a RunID in it) with lo up, and deletes it
// when the test ends, also on failure. It returns the namespace's path.
func NetNS(t testing.TB, name string) string {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s (run as root; `make testbed` installs iproute2)", name, err, out)
	}
	t.Cleanup(func() { DelNetNS(t, name) })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", name, err, out)
	}
	return "/run/netns/" + name
}

// DelNetNS deletes namespace name now (a runtime tearing a sandbox down before DEL); one
// that is already gone is fine.
func DelNetNS(t testing.TB, name string) {
	t.Helper()
	if _, err := os.Stat("/run/netns/" + name); os.IsNotExist(err) {
		return
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", name, err, out)
	}
}
