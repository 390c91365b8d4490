package hostnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// EnsureIPForwarding implements Interface. /proc/sys/net resolves against the namespace of
// the calling thread, hence inNS.
func (h *Host) EnsureIPForwarding() ([]string, error) {
	var ch []string
	err := h.inNS(func() error {
		c, err := ensureSysctl(ipForward, "1")
		ch = append(ch, c...)
		return err
	})
	return ch, err
}

// EnsureNoRedirects implements Interface. The kernel sends a redirect when a packet leaves
// through the interface it came in on, which is every pod-to-remote-pod packet (both pods
// are on kbr0's segment); the pod would then bypass the node and send straight to the
// remote pod over the bridge, where nothing answers a too-big packet with "fragmentation
// needed" (a Linux bridge drops frames above the port MTU silently). The send flag is
// ORed between "all" and the device, so both are cleared.
func (h *Host) EnsureNoRedirects(dev string) ([]string, error) {
	var ch []string
	err := h.inNS(func() error {
		for _, d := range []string{"all", dev} {
			c, err := ensureSysctl(filepath.Join("/proc/sys/net/ipv4/conf", d, "send_redirects"), "0")
			ch = append(ch, c...)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return ch, err
}

// ensureSysctl writes want to the /proc/sys file at path unless it already holds it.
func ensureSysctl(path, want string) ([]string, error) {
	cur, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if strings.TrimSpace(string(cur)) == want {
		return nil, nil
	}
	if err := os.WriteFile(path, []byte(want+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	name := strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
	return []string{name + ": " + want}, nil
}
