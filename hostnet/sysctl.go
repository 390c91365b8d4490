package hostnet

import (
	"fmt"
	"os"
	"strings"
)

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// EnsureIPForwarding implements Interface. /proc/sys/net resolves against the namespace of
// the calling thread, hence inNS.
func (h *Host) EnsureIPForwarding() ([]string, error) {
	var ch []string
	err := h.inNS(func() error {
		cur, err := os.ReadFile(ipForward)
		if err != nil {
			return fmt.Errorf("reading %s: %w", ipForward, err)
		}
		if strings.TrimSpace(string(cur)) == "1" {
			return nil
		}
		if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", ipForward, err)
		}
		ch = append(ch, "net.ipv4.ip_forward: 1")
		return nil
	})
	return ch, err
}
