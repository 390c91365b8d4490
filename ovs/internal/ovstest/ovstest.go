// Package ovstest runs private Open vSwitch daemons for the tests of package ovs: an
// ovsdb-server with its own database, socket, pidfile, control socket and log in one short
// temp dir, and optionally an ovs-vswitchd (userspace datapath) inside a network namespace
// made for the test. Nothing touches the system's /var/run/openvswitch.
//
// It is test support, so unlike product code it runs the OVS tools (ovsdb-tool, ovs-vsctl,
// ovs-appctl, ip). Every process it starts is killed by its PID and every directory and
// namespace it makes is removed in t.Cleanup, also when the test fails; the daemons' logs
// are printed when it does.
package ovstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Schema is the schema the test databases are created from: the copy committed beside
// the generated models, so tests and models always agree.
const Schema = "model/vswitch.ovsschema"

// RequireBinaries fails the test (never skips it) when an OVS tool is missing.
func RequireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found in PATH (%v): run `make testbed` to install Open vSwitch", n, err)
		}
	}
}

// Server is a private ovsdb-server.
type Server struct {
	Dir     string // temp dir holding everything below
	DB      string
	Sock    string // unix socket (connect with "unix:"+Sock)
	Ctl     string // unixctl socket
	PIDFile string
	Log     string

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartServer creates a database from schemaPath (relative to the test's package dir,
// usually Schema or "../"+Schema) and starts ovsdb-server on it in the foreground, as a
// child killed on cleanup. It returns once the socket accepts connections and the
// database has been initialised with `ovs-vsctl init`.
func StartServer(t testing.TB, schemaPath string) *Server {
	t.Helper()
	RequireBinaries(t, "ovsdb-tool", "ovsdb-server", "ovs-vsctl")
	// Unix socket paths must stay under 108 bytes: use a short dir directly under /tmp
	// rather than t.TempDir(), whose path includes the (long) test name.
	dir, err := os.MkdirTemp("/tmp", "om")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Dir: dir, DB: filepath.Join(dir, "conf.db"), Sock: filepath.Join(dir, "db.sock"),
		Ctl: filepath.Join(dir, "ovsdb-server.ctl"), PIDFile: filepath.Join(dir, "ovsdb-server.pid"),
		Log: filepath.Join(dir, "ovsdb-server.log"), t: t,
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			dumpLogs(t, dir)
		}
		os.RemoveAll(dir)
	})
	schema, err := filepath.Abs(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ovsdb-tool", "create", s.DB, schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v: %s", err, out)
	}
	s.Start()
	s.Vsctl("init")
	return s
}

// Start (re)starts ovsdb-server on the same database and socket; see Kill.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("ovstest: ovsdb-server already running")
	}
	// A SIGKILLed server leaves its socket file behind; a restarting real deployment
	// (ovs-ctl) removes it the same way.
	os.Remove(s.Sock)
	cmd := exec.Command("ovsdb-server", s.DB,
		"--remote=punix:"+s.Sock, "--pidfile="+s.PIDFile, "--unixctl="+s.Ctl,
		"--no-chdir", "--log-file="+s.Log)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+s.Dir, "OVS_DBDIR="+s.Dir, "OVS_LOGDIR="+s.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start ovsdb-server: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.exited)
	if err := waitSocket(s.Sock, s.exited, 10*time.Second); err != nil {
		s.Kill()
		s.t.Fatalf("ovsdb-server did not come up: %v; stderr: %s", err, stderr.String())
	}
}

// Kill kills ovsdb-server with SIGKILL (a crash, not a clean shutdown) and waits for it.
// It does nothing when the server is not running.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Vsctl runs `ovs-vsctl --db=unix:<sock> --no-wait args...` and fails the test on error.
func (s *Server) Vsctl(args ...string) string {
	s.t.Helper()
	out, err := s.VsctlErr(args...)
	if err != nil {
		s.t.Fatalf("ovs-vsctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// VsctlErr is Vsctl returning the error (with ovs-vsctl's stderr) instead of failing.
func (s *Server) VsctlErr(args ...string) (string, error) {
	full := append([]string{"--db=unix:" + s.Sock, "--no-wait", "--timeout=20"}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ovs-vsctl", full...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Switch is a private ovs-vswitchd running in its own network namespace.
type Switch struct {
	NS      string // network namespace name (per-run unique)
	Ctl     string // unixctl socket for ovs-appctl -t
	PIDFile string
	Log     string

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartSwitch starts ovs-vswitchd on s's database inside a new network namespace (so the
// tap devices of netdev bridges and any packet it sends stay inside it). Use only
// datapath_type=netdev bridges: this machine has no OVS kernel module.
func (s *Server) StartSwitch(t testing.TB) *Switch {
	t.Helper()
	RequireBinaries(t, "ovs-vswitchd", "ovs-appctl", "ip")
	ns := "om" + RandomSuffix()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	sw := &Switch{NS: ns, Ctl: filepath.Join(s.Dir, "vswitchd.ctl"),
		PIDFile: filepath.Join(s.Dir, "vswitchd.pid"), Log: filepath.Join(s.Dir, "vswitchd.log"), t: t}
	t.Cleanup(func() {
		sw.Stop()
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", ns, err, out)
	}
	// `ip netns exec` and `env` exec (no fork), so cmd.Process is ovs-vswitchd itself.
	cmd := exec.Command("ip", "netns", "exec", ns, "env",
		"OVS_RUNDIR="+s.Dir, "OVS_DBDIR="+s.Dir, "OVS_LOGDIR="+s.Dir,
		"ovs-vswitchd", "unix:"+s.Sock, "--pidfile="+sw.PIDFile, "--unixctl="+sw.Ctl,
		"--no-chdir", "--log-file="+sw.Log)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ovs-vswitchd: %v", err)
	}
	sw.cmd, sw.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(sw.exited) }()
	if err := waitSocket(sw.Ctl, sw.exited, 20*time.Second); err != nil {
		t.Fatalf("ovs-vswitchd did not come up: %v; stderr: %s", err, stderr.String())
	}
	return sw
}

// Appctl runs `ovs-appctl -t <ctl> args...` against the switch and fails the test on error.
func (sw *Switch) Appctl(args ...string) string {
	sw.t.Helper()
	out, err := exec.Command("ovs-appctl", append([]string{"-t", sw.Ctl, "--timeout=20"}, args...)...).CombinedOutput()
	if err != nil {
		sw.t.Fatalf("ovs-appctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Stop asks ovs-vswitchd to exit, removing the datapath devices it made (exit --cleanup),
// and kills it by PID if it has not gone within 5 s.
func (sw *Switch) Stop() {
	if sw.cmd == nil {
		return
	}
	exec.Command("ovs-appctl", "-t", sw.Ctl, "--timeout=5", "exit", "--cleanup").Run()
	select {
	case <-sw.exited:
	case <-time.After(5 * time.Second):
		sw.cmd.Process.Kill()
		<-sw.exited
	}
	sw.cmd = nil
}

// RandomSuffix returns 8 random hex characters for per-run unique names.
func RandomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func waitSocket(path string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("process exited before %s accepted connections", path)
		default:
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dumpLogs(t testing.TB, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Logf("---- %s (tail) ----\n%s", filepath.Base(l), b)
	}
}
