// Package nodetest is test support for the node agent: a network namespace standing in for a
// node, with its own ovsdb-server and ovs-vswitchd (userspace datapath), after
// /work/shared/design/ovs-userspace-sim.sh. Being test support, it runs the OVS and ip tools
// to set up and inspect; product code never does. Everything it makes is removed in
// t.Cleanup, also on failure (processes killed by PID, namespaces and temp dirs deleted), and
// every name carries a per-run random prefix.
package nodetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ovsmesh/ovsmesh/hostnet"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// schema is the committed copy the ovs package's models are generated from.
var schema = filepath.Join(repoRoot(), "ovs", "model", "vswitch.ovsschema")

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RequireBinaries fails (never skips) the test when a tool is missing.
func RequireBinaries(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found in PATH: run `make testbed` to install the test bed", n)
		}
	}
}

// RunID is a short random per-run name part.
func RunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Sh runs a command, failing the test with its output on error.
func Sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Node is one simulated node.
type Node struct {
	t    *testing.T
	NS   string
	Dir  string // short temp dir: db, sockets, logs, CNI conf dir
	Sock string
	H    netns.NsHandle
	vsw  *exec.Cmd
	vswD chan struct{}
}

// New creates network namespace name and starts ovsdb-server and ovs-vswitchd for it.
func New(t *testing.T, name string) *Node {
	t.Helper()
	RequireBinaries(t, "ip", "nft", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl")
	n := &Node{t: t, NS: name}
	Sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", name, err, out)
		}
	})
	Sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	n.H = h
	t.Cleanup(func() { h.Close() })

	// Unix socket paths must stay under 108 bytes: a short dir directly under /tmp.
	dir, err := os.MkdirTemp("/tmp", "oa")
	if err != nil {
		t.Fatal(err)
	}
	n.Dir, n.Sock = dir, filepath.Join(dir, "db.sock")
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range []string{"ovsdb-server.log", "ovs-vswitchd.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, l)); err == nil {
					t.Logf("%s of %s:\n%s", l, name, tail(string(b), 40))
				}
			}
		}
		os.RemoveAll(dir)
	})
	Sh(t, "ovsdb-tool", "create", filepath.Join(dir, "conf.db"), schema)
	db := n.daemon("ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+n.Sock,
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"), "--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	dbDone := make(chan struct{})
	go func() { db.Wait(); close(dbDone) }()
	t.Cleanup(func() { db.Process.Kill(); <-dbDone })
	WaitFor(t, 10*time.Second, "ovsdb-server socket", func() bool {
		c, err := net.Dial("unix", n.Sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	n.Vsctl("--no-wait", "init")
	n.StartVswitchd()
	t.Cleanup(func() { n.StopVswitchd(true) })
	return n
}

func (n *Node) daemon(args ...string) *exec.Cmd {
	n.t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+n.Dir, "OVS_DBDIR="+n.Dir, "OVS_LOGDIR="+n.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", args[0], err)
	}
	return cmd
}

// StartVswitchd runs ovs-vswitchd inside the node's namespace (the userspace datapath opens
// devices by name and creates its taps there) and waits until it has configured the DB.
func (n *Node) StartVswitchd() {
	n.t.Helper()
	n.vsw = n.daemon("ip", "netns", "exec", n.NS, "ovs-vswitchd", "unix:"+n.Sock,
		"--unixctl="+n.Ctl(), "--log-file="+filepath.Join(n.Dir, "ovs-vswitchd.log"))
	n.vswD = make(chan struct{})
	go func(c *exec.Cmd, d chan struct{}) { c.Wait(); close(d) }(n.vsw, n.vswD)
	// Without --no-wait, ovs-vsctl waits for ovs-vswitchd to apply the change.
	n.Vsctl("set", "Open_vSwitch", ".", "external_ids:system-id="+n.NS)
}

// StopVswitchd asks ovs-vswitchd to exit (with cleanup, --cleanup: it removes its datapath
// devices; without, as on an upgrade) and kills it if it does not.
func (n *Node) StopVswitchd(cleanup bool) {
	if n.vsw == nil {
		return
	}
	args := []string{"-t", n.Ctl(), "--timeout=5", "exit"}
	if cleanup {
		args = append(args, "--cleanup")
	}
	_ = exec.Command("ovs-appctl", args...).Run()
	select {
	case <-n.vswD:
	case <-time.After(5 * time.Second):
		n.vsw.Process.Kill()
		<-n.vswD
	}
	n.vsw = nil
}

// Ctl is ovs-vswitchd's unixctl socket.
func (n *Node) Ctl() string { return filepath.Join(n.Dir, "vswitchd.ctl") }

// Vsctl runs ovs-vsctl against the node's database; the output is trimmed.
func (n *Node) Vsctl(args ...string) string {
	n.t.Helper()
	full := append([]string{"--db=unix:" + n.Sock, "--timeout=20"}, args...)
	return strings.TrimSpace(Sh(n.t, append([]string{"ovs-vsctl"}, full...)...))
}

// Appctl runs ovs-appctl against the node's ovs-vswitchd.
func (n *Node) Appctl(args ...string) string {
	n.t.Helper()
	return Sh(n.t, append([]string{"ovs-appctl", "-t", n.Ctl()}, args...)...)
}

// Host returns a hostnet.Host bound to the node's namespace.
func (n *Node) Host() *hostnet.Host {
	n.t.Helper()
	h, err := hostnet.NewAt(n.H)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(h.Close)
	return h
}

// Dial connects an ovs.Client to the node's ovsdb-server.
func (n *Node) Dial() *ovs.Client {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ovs.Dial(ctx, ovs.Options{Socket: n.Sock})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(c.Close)
	return c
}

// Link is the part of `ip -j -d link` the tests compare.
type Link struct {
	Index  int    `json:"ifindex"`
	Name   string `json:"ifname"`
	MTU    int    `json:"mtu"`
	Master string `json:"master"`
	Flags  []string
	Info   struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

// Links lists the namespace's links by name.
func (n *Node) Links() map[string]Link {
	n.t.Helper()
	var ls []Link
	if err := json.Unmarshal([]byte(Sh(n.t, "ip", "-n", n.NS, "-d", "-j", "link", "show")), &ls); err != nil {
		n.t.Fatal(err)
	}
	m := map[string]Link{}
	for _, l := range ls {
		m[l.Name] = l
	}
	return m
}

// WaitFor polls ok every 50 ms until it holds, failing the test after d.
func WaitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Underlay gives the node an "eth0" holding ip/24 (a veth end: this kernel has no dummy
// module), as the node's NIC.
func (n *Node) Underlay(ip string) {
	Sh(n.t, "ip", "-n", n.NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	Sh(n.t, "ip", "-n", n.NS, "addr", "add", ip+"/24", "dev", "eth0")
	Sh(n.t, "ip", "-n", n.NS, "link", "set", "eth0", "up")
}
