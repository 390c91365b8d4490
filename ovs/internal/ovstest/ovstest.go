// Package ovstest runs private Open vSwitch daemons for the tests of package ovs: an
// ovsdb-server with its own database, socket, pidfile, control socket and log in one short
// temp dir, and optionally an ovs-vswitchd (userspace datapath) inside a network namespace
// made for the test, both started by internal/testbed from the committed schema. Nothing
// touches the system's /var/run/openvswitch.
//
// It is test support, so unlike product code it runs the OVS tools (ovsdb-tool, ovs-vsctl,
// ovs-appctl, ip). Every process it starts is killed by its PID and every directory and
// namespace it makes is removed in t.Cleanup, also when the test fails; the daemons' logs
// are printed when it does.
package ovstest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

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
	Dir  string // temp dir holding everything below
	DB   string
	Sock string // unix socket (connect with "unix:"+Sock)

	t   testing.TB
	ovs *testbed.OVS
}

// StartServer creates a database from the committed schema (testbed.Schema) and starts
// ovsdb-server on it, as a child killed on cleanup. It returns once the socket accepts
// connections and the database has been initialised with `ovs-vsctl init`.
func StartServer(t testing.TB) *Server {
	t.Helper()
	RequireBinaries(t, "ovsdb-tool", "ovsdb-server", "ovs-vsctl")
	// Unix socket paths must stay under 108 bytes: use a short dir directly under /tmp
	// rather than t.TempDir(), whose path includes the (long) test name.
	dir, err := os.MkdirTemp("/tmp", "om")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, DB: filepath.Join(dir, "conf.db"), Sock: filepath.Join(dir, "db.sock"), t: t}
	t.Cleanup(func() {
		s.ovs.Stop()
		if t.Failed() {
			t.Logf("OVS logs:\n%s", s.ovs.Logs(80))
		}
		os.RemoveAll(dir)
	})
	if s.ovs, err = testbed.StartOVS(context.Background(), testbed.OVSConfig{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	return s
}

// Start restarts ovsdb-server on the same database and socket after Kill.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.ovs.StartDB(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// Kill kills ovsdb-server with SIGKILL (a crash, not a clean shutdown) and waits for it.
// It does nothing when the server is not running.
func (s *Server) Kill() { s.ovs.KillDB() }

// Pause stops ovsdb-server with SIGSTOP (a hung server: the socket stays open, nothing
// answers) until Resume; cleanup resumes it first.
func (s *Server) Pause() {
	s.ovs.PauseDB()
	s.t.Cleanup(s.ovs.ResumeDB)
}

// Resume continues a paused ovsdb-server.
func (s *Server) Resume() { s.ovs.ResumeDB() }

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
	NS  string // network namespace name (per-run unique)
	Ctl string // unixctl socket for ovs-appctl -t

	t   testing.TB
	ovs *testbed.OVS
}

// StartSwitch starts ovs-vswitchd on s's database inside a new network namespace (so the
// tap devices of netdev bridges and any packet it sends stay inside it). Use only
// datapath_type=netdev bridges: this machine has no OVS kernel module.
func (s *Server) StartSwitch(t testing.TB) *Switch {
	t.Helper()
	RequireBinaries(t, "ovs-vswitchd", "ovs-appctl", "ip")
	ns := "om" + testbed.RunID(4)
	testbed.NetNS(t, ns)
	sw := &Switch{NS: ns, t: t, ovs: s.ovs}
	t.Cleanup(sw.Stop) // runs before the namespace goes (cleanups run last-in first-out)
	s.ovs.Prefix = []string{"ip", "netns", "exec", ns}
	if err := s.ovs.StartVswitchd(context.Background()); err != nil {
		t.Fatal(err)
	}
	sw.Ctl = s.ovs.Ctl()
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
// and kills it if it has not gone within 5 s.
func (sw *Switch) Stop() { sw.ovs.StopVswitchd(true) }
