package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

const testbedHint = "run `make testbed` (Debian packages containernetworking-plugins, iproute2, iputils-ping, iptables)"

var (
	binDir string // CNI_PATH: the fresh ovsmesh binary plus links to Debian's host-local and portmap
	runID  string // per-run unique part of every name
	seq    atomic.Int32
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "cni integration tests create network namespaces: run them as root")
		return 1
	}
	for _, b := range []string{"/usr/lib/cni/host-local", "/usr/lib/cni/portmap"} {
		if _, err := os.Stat(b); err != nil {
			fmt.Fprintf(os.Stderr, "missing %s: %s\n", b, testbedHint)
			return 1
		}
	}
	for _, tool := range []string{"ip", "ping", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "missing %s: %s\n", tool, testbedHint)
			return 1
		}
	}
	runID = testbed.RunID(3)

	var err error
	binDir, err = os.MkdirTemp("", "ovsmesh-cni-"+runID+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, config.PluginType), "github.com/ovsmesh/ovsmesh/cmd/ovsmesh")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the plugin:", err)
		return 1
	}
	for _, p := range []string{"host-local", "portmap"} {
		if err := os.Symlink("/usr/lib/cni/"+p, filepath.Join(binDir, p)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}

	code := m.Run()

	// Every test removes its namespaces in t.Cleanup; this catches any that did not.
	if left := ourNetns(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: network namespaces left behind: %v\n", left)
		for _, n := range left {
			_ = exec.Command("ip", "netns", "del", n).Run()
		}
		code = 1
	}
	// Nothing may reach the root namespace: no bridge or tagged veth of this run there.
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if a := l.Attrs(); strings.Contains(a.Name, runID) || strings.Contains(a.Alias, runID) {
				fmt.Fprintf(os.Stderr, "FAIL: link %s (alias %q) of this run is in the root network namespace\n", a.Name, a.Alias)
				code = 1
			}
		}
	}
	return code
}

// prefix starts every namespace name of this run.
func prefix() string { return "omcni-" + runID }

func ourNetns() []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix()) {
			left = append(left, f[0])
		}
	}
	return left
}

// addNetns creates a named netns and removes it when the test ends (also on failure).
func addNetns(t *testing.T, kind string) (name, path string) {
	t.Helper()
	name = fmt.Sprintf("%s-%s%d", prefix(), kind, seq.Add(1))
	return name, testbed.NetNS(t, name)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// node is a simulated node: a netns with the pod bridge (what the agent would create: a
// Linux bridge holding the gateway address), a host-local data dir and a libcni cache.
type node struct {
	t        *testing.T
	name     string
	path     string
	bridge   string
	subnet   netip.Prefix
	gw       netip.Addr
	dataDir  string
	cacheDir string
	cni      *libcni.CNIConfig
}

type nodeOpts struct {
	subnet   string // default 10.244.1.0/24
	noBridge bool
}

func newNode(t *testing.T, o nodeOpts) *node {
	t.Helper()
	if o.subnet == "" {
		o.subnet = "10.244.1.0/24"
	}
	n := &node{t: t, subnet: netip.MustParsePrefix(o.subnet), dataDir: t.TempDir(), cacheDir: t.TempDir()}
	n.gw = n.subnet.Addr().Next()
	n.name, n.path = addNetns(t, "node")
	n.bridge = fmt.Sprintf("kbr%s%d", runID, seq.Add(1)%1000) // at most 12 characters
	n.cni = newCNI([]string{binDir}, n.cacheDir)
	n.do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if !o.noBridge {
		n.addBridge()
	}
	return n
}

// do runs fn in the node netns; the plugin processes libcni starts there inherit it.
func (n *node) do(fn func() error) {
	n.t.Helper()
	if err := n.try(fn); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) try(fn func() error) error {
	return ns.WithNetNSPath(n.path, func(ns.NetNS) error { return fn() })
}

// addBridge creates the bridge with the gateway address, as the agent does.
func (n *node) addBridge() {
	n.t.Helper()
	n.do(func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.bridge
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("creating bridge %s: %w", n.bridge, err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.gw.AsSlice(), Mask: net.CIDRMask(n.subnet.Bits(), 32)}}
		if err := netlink.AddrAdd(br, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(br)
	})
}

// input is the agent's view of this node.
func (n *node) input(version string) config.Input {
	return config.Input{
		CNIVersion:  version,
		Bridge:      n.bridge,
		Subnet:      n.subnet,
		Gateway:     n.gw,
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		MTU:         1450,
		IPAMDataDir: n.dataDir,
	}
}

// list renders the conflist the way the agent does and loads it the way a runtime does.
func (n *node) list(in config.Input) *libcni.NetworkConfigList {
	n.t.Helper()
	b, err := config.Render(in)
	if err != nil {
		n.t.Fatalf("Render: %v", err)
	}
	return loadList(n.t, b)
}

func loadList(t *testing.T, b []byte) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		t.Fatalf("libcni cannot load the conflist: %v\n%s", err, b)
	}
	return l
}

// editPlugin returns the conflist with fn applied to the ovsmesh entry (as generic JSON).
func editPlugin(t *testing.T, l *libcni.NetworkConfigList, fn func(map[string]any)) *libcni.NetworkConfigList {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(l.Bytes, &m); err != nil {
		t.Fatal(err)
	}
	fn(m["plugins"].([]any)[0].(map[string]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return loadList(t, b)
}

type pod struct {
	name, path, id string
}

func (n *node) newPod(t *testing.T) *pod {
	t.Helper()
	name, path := addNetns(t, "pod")
	return &pod{name: name, path: path, id: "ctr-" + name}
}

func (p *pod) rt() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.id, NetNS: p.path, IfName: "eth0"}
}

func (n *node) add(t *testing.T, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (*current.Result, error) {
	var r types.Result
	err := n.try(func() (err error) {
		r, err = n.cni.AddNetworkList(ctx(t), l, rt)
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.Version() != l.CNIVersion {
		t.Errorf("ADD returned a %s result for a %s network", r.Version(), l.CNIVersion)
	}
	return current.NewResultFromResult(r)
}

func (n *node) mustAdd(t *testing.T, l *libcni.NetworkConfigList, p *pod) *current.Result {
	t.Helper()
	r, err := n.add(t, l, p.rt())
	if err != nil {
		t.Fatalf("ADD %s: %v", p.id, err)
	}
	return r
}

func (n *node) check(t *testing.T, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return n.try(func() error { return n.cni.CheckNetworkList(ctx(t), l, rt) })
}

func (n *node) del(t *testing.T, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return n.try(func() error { return n.cni.DelNetworkList(ctx(t), l, rt) })
}

func (n *node) status(t *testing.T, l *libcni.NetworkConfigList) error {
	return n.try(func() error { return n.cni.GetStatusNetworkList(ctx(t), l) })
}

// vethNames lists the veth links in the node netns.
func (n *node) vethNames() []string {
	n.t.Helper()
	var out []string
	n.do(func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if _, ok := l.(*netlink.Veth); ok {
				out = append(out, l.Attrs().Name)
			}
		}
		return err
	})
	return out
}

// link looks a link up in the node netns.
func (n *node) link(name string) (netlink.Link, error) {
	var l netlink.Link
	err := n.try(func() (err error) { l, err = netlink.LinkByName(name); return err })
	return l, err
}

// reservations reads host-local's store: address -> "containerID/ifname".
func (n *node) reservations(network string) map[string]string {
	n.t.Helper()
	dir := filepath.Join(n.dataDir, network)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return map[string]string{}
	}
	if err != nil {
		n.t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			n.t.Fatal(err)
		}
		out[e.Name()] = strings.ReplaceAll(strings.TrimSpace(string(b)), "\r\n", "/")
	}
	return out
}

// inPod runs fn inside the pod's netns.
func inPod(t *testing.T, p *pod, fn func() error) {
	t.Helper()
	if err := ns.WithNetNSPath(p.path, func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatal(err)
	}
}

// podHasLink reports whether the pod netns has a link called name.
func podHasLink(t *testing.T, p *pod, name string) bool {
	t.Helper()
	found := false
	inPod(t, p, func() error {
		_, err := netlink.LinkByName(name)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		found = err == nil
		return err
	})
	return found
}

// ping sends pings from inside the pod netns: ping is a test tool, the plugin never execs.
func ping(t *testing.T, from *pod, to net.IP) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", from.name, "ping", "-c", "2", "-i", "0.2", "-W", "2", to.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", to, from.name, err, out)
	}
	if !bytes.Contains(out, []byte(" 0% packet loss")) {
		t.Fatalf("ping %s from %s lost packets:\n%s", to, from.name, out)
	}
}

// cniError asserts err is a CNI error JSON with the given code and returns it.
func cniError(t *testing.T, err error, code uint) *types.Error {
	t.Helper()
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("want a CNI error with code %d, got %T: %v", code, err, err)
	}
	if te.Code != code {
		t.Fatalf("want CNI error code %d, got %d: %v", code, te.Code, te)
	}
	return te
}

// podIP is the single address of an ADD result.
func podIP(t *testing.T, r *current.Result) net.IP {
	t.Helper()
	if len(r.IPs) != 1 {
		t.Fatalf("want 1 address in the result, got %d: %+v", len(r.IPs), r.IPs)
	}
	return r.IPs[0].Address.IP
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// newCNI is libcni as a runtime sets it up. The exec is passed explicitly: libcni fills in a
// missing one lazily without locking, a data race when one CNIConfig serves concurrent ADDs.
func newCNI(path []string, cacheDir string) *libcni.CNIConfig {
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	return libcni.NewCNIConfigWithCacheDir(path, cacheDir, exec)
}
