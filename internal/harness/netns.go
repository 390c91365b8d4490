package harness

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

// run executes a setup or inspection tool (ip, ovs-vsctl, ethtool, ping...). Only the harness
// does this; the product binaries never exec tools.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// inNS runs a command inside a named network namespace.
func inNS(ctx context.Context, ns string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// NSPath is the bind-mount path of a named network namespace.
func NSPath(ns string) string { return "/run/netns/" + ns }

func addNS(ctx context.Context, ns string) error {
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	_, err := inNS(ctx, ns, "ip", "link", "set", "lo", "up")
	return err
}

// delNS kills whatever still runs in the namespace (only ever the harness's own processes)
// and deletes it.
func delNS(ctx context.Context, ns string) error {
	if pids, err := run(ctx, "ip", "netns", "pids", ns); err == nil {
		for _, p := range strings.Fields(pids) {
			_, _ = run(ctx, "kill", "-9", p)
		}
	}
	_, err := run(ctx, "ip", "netns", "del", ns)
	return err
}

// offloadsOff disables checksum and segmentation offloads (testbed.OffloadsOff).
func offloadsOff(ctx context.Context, ns, dev string) { testbed.OffloadsOff(ctx, ns, dev) }
