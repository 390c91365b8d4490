// Package nodetest is test support for the node agent: a network namespace standing in for a
// node, with its own ovsdb-server and ovs-vswitchd (userspace datapath, started by
// internal/testbed), after /work/shared/design/ovs-userspace-sim.sh. Being test support, it
// runs the OVS and ip tools to set up and inspect; product code never does. Everything it
// makes is removed in t.Cleanup, also on failure (processes killed by PID, namespaces and
// temp dirs deleted), and every name carries a per-run random prefix.
package nodetest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ovsmesh/ovsmesh/hostnet"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
	"github.com/ovsmesh/ovsmesh/ovs"
)

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
func RunID() string { return testbed.RunID(3) }

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
	ovs  *testbed.OVS
}

// New creates network namespace name and starts ovsdb-server and ovs-vswitchd for it
// (testbed.StartOVS: the database in this namespace, the switch inside the node's).
func New(t *testing.T, name string) *Node {
	t.Helper()
	RequireBinaries(t, "ip", "nft", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl")
	n := &Node{t: t, NS: name}
	testbed.NetNS(t, name)
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
		n.ovs.Stop()
		if t.Failed() {
			t.Logf("OVS of %s:\n%s", name, n.ovs.Logs(40))
		}
		os.RemoveAll(dir)
	})
	n.ovs, err = testbed.StartOVS(context.Background(), testbed.OVSConfig{Dir: dir, Prefix: []string{"ip", "netns", "exec", name}})
	if err != nil {
		t.Fatal(err)
	}
	n.StartVswitchd()
	return n
}

// StartVswitchd runs ovs-vswitchd inside the node's namespace (the userspace datapath opens
// devices by name and creates its taps there) and waits until it has configured the DB.
func (n *Node) StartVswitchd() {
	n.t.Helper()
	if err := n.ovs.StartVswitchd(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	// Without --no-wait, ovs-vsctl waits for ovs-vswitchd to apply the change.
	n.Vsctl("set", "Open_vSwitch", ".", "external_ids:system-id="+n.NS)
}

// StopVswitchd asks ovs-vswitchd to exit (with cleanup, --cleanup: it removes its datapath
// devices; without, as on an upgrade) and kills it if it does not.
func (n *Node) StopVswitchd(cleanup bool) { n.ovs.StopVswitchd(cleanup) }

// KillDB kills the node's ovsdb-server (SIGKILL: a crash); StartDB starts it again on the
// same database and socket.
func (n *Node) KillDB() { n.ovs.KillDB() }

// StartDB restarts ovsdb-server after KillDB.
func (n *Node) StartDB() {
	n.t.Helper()
	if err := n.ovs.StartDB(context.Background()); err != nil {
		n.t.Fatal(err)
	}
}

// PauseDB stops ovsdb-server with SIGSTOP (hung: its socket stays open, nothing answers)
// until ResumeDB; cleanup resumes it before stopping it.
func (n *Node) PauseDB() {
	n.ovs.PauseDB()
	n.t.Cleanup(n.ovs.ResumeDB)
}

// ResumeDB continues a paused ovsdb-server (SIGCONT).
func (n *Node) ResumeDB() { n.ovs.ResumeDB() }

// Ctl is ovs-vswitchd's unixctl socket.
func (n *Node) Ctl() string { return n.ovs.Ctl() }

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
	if err := testbed.WaitFor(context.Background(), d, 50*time.Millisecond, ok); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Underlay gives the node an "eth0" holding ip/24 (a veth end: this kernel has no dummy
// module), as the node's NIC.
func (n *Node) Underlay(ip string) {
	Sh(n.t, "ip", "-n", n.NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	Sh(n.t, "ip", "-n", n.NS, "addr", "add", ip+"/24", "dev", "eth0")
	Sh(n.t, "ip", "-n", n.NS, "link", "set", "eth0", "up")
}
