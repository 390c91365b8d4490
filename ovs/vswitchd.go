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
	version, err := unixctl(ctx, ctl, "version")
	return strings.TrimSpace(version), err
}

// FlushFDB empties the MAC learning table of a bridge. ovs-appctl equivalent:
//
//	ovs-appctl -t <ctl> fdb/flush obr0
//
// After a loop-prevention change, MACs learned on the old paths (a peer's pods learned on
// the tunnel to the spanning-tree root) would send unicast into a port that no longer
// leads there until they age out (300 s); flushed, the next frame floods and relearns.
func FlushFDB(ctx context.Context, ctl, bridge string) error {
	_, err := unixctl(ctx, ctl, "fdb/flush", bridge)
	return err
}

// unixctl runs one ovs-appctl command on ovs-vswitchd's unixctl socket (JSON-RPC; every
// command takes an array of string arguments and answers a string), bounded by ctx and 5 s.
func unixctl(ctx context.Context, ctl, command string, args ...string) (string, error) {
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
	if args == nil {
		args = []string{}
	}
	var reply string
	if err := c.CallWithContext(ctx, command, args, &reply); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("ovs: ovs-vswitchd on %s did not answer %s within 5 s", ctl, command)
		}
		return "", fmt.Errorf("ovs: ovs-vswitchd on %s: %s: %w", ctl, command, err)
	}
	return reply, nil
}
