package testbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// OVSConfig says where a private Open vSwitch runs.
type OVSConfig struct {
	// Dir holds the database, the sockets, the pidfiles and the logs (keep it short: unix
	// socket paths must fit in 108 bytes).
	Dir string
	// RunDir is Dir as the daemons see it, when they run in another mount namespace (a real
	// node's /var/run/openvswitch); empty means Dir.
	RunDir string
	// Prefix runs the daemons inside namespaces: `ip netns exec NS` or `nsenter -t PID -m
	// -n`. It must exec, not fork, so the process is the daemon. ovsdb-server runs inside
	// too when DBInside is set; else only ovs-vswitchd does (it opens the datapath's
	// devices there).
	Prefix   []string
	DBInside bool
	// DefaultCtl leaves ovs-vswitchd's unixctl socket at OVS's default name,
	// ovs-vswitchd.PID.ctl, which the agent finds from the pidfile as ovs-appctl does;
	// otherwise it is Dir/vswitchd.ctl.
	DefaultCtl bool
	// SystemID is written to Open_vSwitch external_ids:system-id (the node name).
	SystemID string
}

// OVS is a private ovsdb-server and, once started, ovs-vswitchd.
type OVS struct {
	OVSConfig
	db, vswitchd *proc.Process
}

func (o *OVS) runDir() string {
	if o.RunDir != "" {
		return o.RunDir
	}
	return o.Dir
}

// Socket is the OVSDB unix socket, from this process.
func (o *OVS) Socket() string { return filepath.Join(o.Dir, "db.sock") }

// Ctl is ovs-vswitchd's unixctl socket, from this process ("" before it ever ran).
func (o *OVS) Ctl() string {
	if !o.DefaultCtl {
		return filepath.Join(o.Dir, "vswitchd.ctl")
	}
	pid, err := os.ReadFile(filepath.Join(o.Dir, "ovs-vswitchd.pid"))
	if err != nil {
		return ""
	}
	return filepath.Join(o.Dir, "ovs-vswitchd."+strings.TrimSpace(string(pid))+".ctl")
}

// StartOVS creates the database from Schema (unless it exists: a restart keeps it) and
// starts ovsdb-server; it returns once the socket answers and `ovs-vsctl init` ran.
func StartOVS(ctx context.Context, cfg OVSConfig) (*OVS, error) {
	for _, b := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("%s not found: run `make testbed` to install Open vSwitch", b)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	o := &OVS{OVSConfig: cfg}
	db := filepath.Join(o.Dir, "conf.db")
	if _, err := os.Stat(db); err != nil {
		if out, err := exec.CommandContext(ctx, "ovsdb-tool", "create", db, Schema()).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ovsdb-tool create: %w: %s", err, out)
		}
	}
	if err := o.StartDB(ctx); err != nil {
		return nil, err
	}
	init := []string{"--no-wait", "init"}
	if cfg.SystemID != "" {
		init = append(init, "--", "set", "Open_vSwitch", ".", "external_ids:system-id="+cfg.SystemID)
	}
	if _, err := o.Vsctl(ctx, init...); err != nil {
		o.Stop()
		return nil, err
	}
	return o, nil
}

func (o *OVS) daemon(name string, inside bool, args ...string) (*proc.Process, error) {
	r := o.runDir()
	argv := []string{"env", "OVS_RUNDIR=" + r, "OVS_DBDIR=" + r, "OVS_LOGDIR=" + r}
	if inside {
		argv = append(append([]string{}, o.Prefix...), argv...)
	}
	return proc.Start(o.Dir, name, "", nil, append(argv, args...)...)
}

// StartDB (re)starts ovsdb-server on the database and waits for its socket.
func (o *OVS) StartDB(ctx context.Context) error {
	if o.db != nil && !o.db.Exited() {
		return fmt.Errorf("ovsdb-server already running")
	}
	// A SIGKILLed server leaves its socket file behind; ovs-ctl removes it the same way.
	_ = os.Remove(o.Socket())
	r := o.runDir()
	p, err := o.daemon("ovsdb-server", o.DBInside, "ovsdb-server", filepath.Join(r, "conf.db"),
		"--remote=punix:"+filepath.Join(r, "db.sock"), "--pidfile="+filepath.Join(r, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(r, "ovsdb-server.ctl"), "--no-chdir", "--log-file="+filepath.Join(r, "ovsdb-server.log"))
	if err != nil {
		return err
	}
	o.db = p
	if err := WaitFor(ctx, 20*time.Second, 20*time.Millisecond, func() bool {
		c, err := net.Dial("unix", o.Socket())
		if err == nil {
			c.Close()
		}
		return err == nil || p.Exited()
	}); err != nil || p.Exited() {
		return fmt.Errorf("ovsdb-server did not come up (%v):\n%s", err, p.Tail(10))
	}
	return nil
}

// KillDB kills ovsdb-server (a crash, not a shutdown).
func (o *OVS) KillDB() { o.db.Kill() }

// PauseDB stops ovsdb-server (SIGSTOP): a hung server, whose socket stays open. ResumeDB
// continues it.
func (o *OVS) PauseDB() { o.db.Pause() }

// ResumeDB continues a paused ovsdb-server (SIGCONT).
func (o *OVS) ResumeDB() { o.db.Resume() }

// StartVswitchd starts ovs-vswitchd (inside Prefix) and waits until it answers.
func (o *OVS) StartVswitchd(ctx context.Context) error {
	r := o.runDir()
	args := []string{"ovs-vswitchd", "unix:" + filepath.Join(r, "db.sock"), "--pidfile=" + filepath.Join(r, "ovs-vswitchd.pid"),
		"--no-chdir", "--log-file=" + filepath.Join(r, "ovs-vswitchd.log")}
	if !o.DefaultCtl {
		args = append(args, "--unixctl="+filepath.Join(r, "vswitchd.ctl"))
	}
	p, err := o.daemon("ovs-vswitchd", true, args...)
	if err != nil {
		return err
	}
	o.vswitchd = p
	if err := WaitFor(ctx, 30*time.Second, 50*time.Millisecond, func() bool {
		out, err := o.Appctl(ctx, "version")
		return (err == nil && strings.Contains(out, "ovs-vswitchd")) || p.Exited()
	}); err != nil || p.Exited() {
		return fmt.Errorf("ovs-vswitchd did not come up (%v):\n%s", err, p.Tail(10))
	}
	return nil
}

// StopVswitchd asks ovs-vswitchd to exit — with --cleanup it removes its datapath devices,
// without it leaves them as an upgrade does — and kills it if it has not gone within 5 s.
func (o *OVS) StopVswitchd(cleanup bool) {
	if o.vswitchd == nil || o.vswitchd.Exited() {
		return
	}
	args := []string{"-t", o.Ctl(), "--timeout=5", "exit"}
	if cleanup {
		args = append(args, "--cleanup")
	}
	_ = exec.Command("ovs-appctl", args...).Run()
	o.vswitchd.Stop(5 * time.Second)
}

// KillVswitchd kills ovs-vswitchd the way a crash would.
func (o *OVS) KillVswitchd() { o.vswitchd.Kill() }

// Stop stops ovs-vswitchd (with cleanup) and ovsdb-server.
func (o *OVS) Stop() {
	if o == nil {
		return
	}
	o.StopVswitchd(true)
	o.db.Stop(5 * time.Second)
}

// Logs returns the tails of the daemons' logs, for a failing test's output.
func (o *OVS) Logs(lines int) string {
	var b strings.Builder
	for _, l := range []string{"ovsdb-server.log", "ovs-vswitchd.log"} {
		if data, err := os.ReadFile(filepath.Join(o.Dir, l)); err == nil {
			s := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			if len(s) > lines {
				s = s[len(s)-lines:]
			}
			fmt.Fprintf(&b, "--- %s ---\n%s\n", l, strings.Join(s, "\n"))
		}
	}
	return b.String()
}

// Vsctl runs ovs-vsctl against the database.
func (o *OVS) Vsctl(ctx context.Context, args ...string) (string, error) {
	return Run(ctx, time.Minute, "", "ovs-vsctl", append([]string{"--db=unix:" + o.Socket(), "--timeout=20"}, args...)...)
}

// Appctl runs ovs-appctl against ovs-vswitchd.
func (o *OVS) Appctl(ctx context.Context, args ...string) (string, error) {
	ctl := o.Ctl()
	if ctl == "" {
		return "", fmt.Errorf("ovs-vswitchd has not written its pidfile in %s", o.Dir)
	}
	return Run(ctx, time.Minute, "", "ovs-appctl", append([]string{"-t", ctl, "--timeout=20"}, args...)...)
}
