package testbed

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Run executes a setup or inspection tool (ip, ovs-vsctl, kubectl, ...) with stdin (if not
// empty), killed after timeout. The error carries the command and its stderr. Only test
// support does this; the product never execs tools.
func Run(ctx context.Context, timeout time.Duration, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// OffloadArgs are the ethtool -K arguments that turn off checksum and segmentation offloads:
// the userspace datapath reads frames through AF_PACKET and mishandles partial checksums and
// 64K GSO frames, so every link it reads from needs them off.
var OffloadArgs = []string{"tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"}

// OffloadsOff turns the offloads off on dev, inside network namespace ns ("" = this one).
// A device that refuses (some have fixed offloads) is left as it is.
func OffloadsOff(ctx context.Context, ns, dev string) {
	argv := append([]string{"ethtool", "-K", dev}, OffloadArgs...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	_, _ = Run(ctx, time.Minute, "", argv[0], argv[1:]...)
}

// UnderlayBridge puts the node's underlay address on an OVS bridge br-phy holding its NIC
// eth0: userspace-datapath tunnels find their route and neighbour only there (OVS native
// tunnelling). in runs a command inside the node's namespaces.
func (o *OVS) UnderlayBridge(ctx context.Context, hwaddr, cidr string, in func(ctx context.Context, args ...string) (string, error)) error {
	if _, err := o.Vsctl(ctx, "--may-exist", "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
		fmt.Sprintf(`other_config:hwaddr="%s"`, hwaddr), "--", "--may-exist", "add-port", "br-phy", "eth0"); err != nil {
		return err
	}
	if err := WaitFor(ctx, 20*time.Second, 100*time.Millisecond, func() bool {
		_, err := in(ctx, "ip", "link", "show", "br-phy")
		return err == nil
	}); err != nil {
		return fmt.Errorf("br-phy did not appear: %w", err)
	}
	for _, s := range [][]string{{"ip", "addr", "add", cidr, "dev", "br-phy"}, {"ip", "link", "set", "br-phy", "up"}} {
		if _, err := in(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}
