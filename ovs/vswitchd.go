package ovs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/rpc2"
	"github.com/cenkalti/rpc2/jsonrpc"
)

// ovsdb-server being up says nothing about ovs-vswitchd: the database keeps the last
// status columns (STP state, BFD, link state) it wrote, so a dead ovs-vswitchd looks
// healthy through OVSDB. Liveness is asked of ovs-vswitchd itself, over its unixctl
// socket (JSON-RPC, the protocol ovs-appctl speaks), with a read-only command.

// VswitchdCtlPath returns ovs-vswitchd's unixctl socket in runDir, found the way
// `ovs-appctl -t ovs-vswitchd` finds it: runDir/ovs-vswitchd.<pid>.ctl, with the pid read
// from runDir/ovs-vswitchd.pid. The pid changes when ovs-vswitchd restarts, so callers
// resolve the path again for every probe.
func VswitchdCtlPath(runDir string) (string, error) {
	pidfile := filepath.Join(runDir, "ovs-vswitchd.pid")
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return "", fmt.Errorf("ovs: ovs-vswitchd pidfile: %w (is ovs-vswitchd running?)", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "", fmt.Errorf("ovs: ovs-vswitchd pidfile %s holds %q, not a pid", pidfile, strings.TrimSpace(string(b)))
	}
	return filepath.Join(runDir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid)), nil
}

// VswitchdVersion asks the ovs-vswitchd listening on unixctl socket ctl for its version,
// which proves it is running and serving its main loop. ovs-appctl equivalent:
//
//	ovs-appctl -t <ctl> version
//
// The whole exchange is bounded by ctx and by 5 s.
func VswitchdVersion(ctx context.Context, ctl string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", ctl)
	if err != nil {
		return "", fmt.Errorf("ovs: ovs-vswitchd does not answer on %s (is it running?): %w", ctl, err)
	}
	c := rpc2.NewClientWithCodec(jsonrpc.NewJSONCodec(conn))
	go c.Run()
	defer c.Close()
	var version string
	// unixctl commands take an array of string arguments; version takes none.
	if err := c.CallWithContext(ctx, "version", []string{}, &version); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("ovs: ovs-vswitchd on %s did not answer within 5 s", ctl)
		}
		return "", fmt.Errorf("ovs: ovs-vswitchd on %s: version: %w", ctl, err)
	}
	return strings.TrimSpace(version), nil
}
