package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// cniVersion is spoken by both sides: Debian's bridge and host-local (1.1.1) stop at 1.0.0.
const cniVersion = "1.0.0"

// CNIOptions sizes the CNI latency benchmark.
type CNIOptions struct {
	Pods int // pods per side (at least 200 in the report; at most 1,000)
}

// CNIResult holds per-pod ADD and DEL latencies of both plugins.
type CNIResult struct {
	Pods                             int
	OursAdd, OursDel, RefAdd, RefDel []time.Duration
}

// Figures compares p50 (target ≤ 1.0×) and p99 (target ≤ 1.2×) of ADD and DEL.
func (r CNIResult) Figures() []Figure {
	var out []Figure
	for _, v := range []struct {
		verb      string
		ours, ref []time.Duration
	}{{"ADD", r.OursAdd, r.RefAdd}, {"DEL", r.OursDel, r.RefDel}} {
		for _, p := range []struct {
			q     float64
			limit float64
		}{{50, 1.0}, {99, 1.2}} {
			o, rf := Percentile(v.ours, p.q), Percentile(v.ref, p.q)
			out = append(out, AtMost(fmt.Sprintf("CNI %s p%g, %d pods: ovsmesh vs bridge+host-local", v.verb, p.q, r.Pods),
				ms(o), ms(rf), DurRatio(o, rf), p.limit))
		}
	}
	return out
}

// cniSide is one plugin under test on the shared node namespace.
type cniSide struct {
	name string
	list *libcni.NetworkConfigList
	cni  *libcni.CNIConfig
	pods []string // pod netns names
}

// CNILatency attaches and detaches opts.Pods pods with the ovsmesh plugin and with the
// reference bridge + host-local plugins (Debian containernetworking-plugins), both at spec
// 1.0.0, through libcni as a runtime does, from inside one "node" namespace that holds one
// Linux bridge per side (created beforehand with the gateway address, as the agent does; the
// reference bridge plugin gets isGateway=false so it does no more than ovsmesh). Both use the
// same host-local binary with an equivalent range, routes and MTU. The calls are interleaved
// — pod i of one side, then pod i of the other, the order alternating with i — so load
// changes on the shared machine hit both alike. Pod namespaces are made before the clock
// runs; only the libcni call is timed.
func CNILatency(ctx context.Context, e *Env, o CNIOptions) (CNIResult, error) {
	r := CNIResult{Pods: o.Pods}
	if o.Pods < 1 || o.Pods > 1000 {
		return r, fmt.Errorf("CNI benchmark: %d pods, want 1-1000", o.Pods)
	}
	if err := RequireTools("ip", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local"); err != nil {
		return r, err
	}
	bin := filepath.Join(e.Dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, config.PluginType), "./cmd/ovsmesh")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return r, fmt.Errorf("building the ovsmesh plugin: %v: %s", err, out)
	}
	node := e.Prefix + "-node"
	if err := e.AddNetns(ctx, node); err != nil {
		return r, err
	}
	// A /22 per side holds 1,021 pods.
	ours, err := ovsmeshSide(e, node, bin, "kbr"+e.Prefix[2:]+"a", netip.MustParsePrefix("10.244.4.0/22"))
	if err != nil {
		return r, err
	}
	ref, err := referenceSide(e, node, bin, "kbr"+e.Prefix[2:]+"b", netip.MustParsePrefix("10.244.8.0/22"))
	if err != nil {
		return r, err
	}
	sides := []*cniSide{ours, ref}
	for _, s := range sides {
		for i := 0; i < o.Pods; i++ {
			name := fmt.Sprintf("%s-%s%d", e.Prefix, s.name, i)
			if err := e.AddNetns(ctx, name); err != nil {
				return r, err
			}
			s.pods = append(s.pods, name)
		}
	}
	e.Logf("CNI: %d pod namespaces per side ready; timing ADD", o.Pods)
	adds, err := interleave(ctx, node, sides, o.Pods, func(s *cniSide, i int) error {
		_, err := s.cni.AddNetworkList(ctx, s.list, runtimeConf(s, i))
		return err
	})
	if err != nil {
		return r, fmt.Errorf("ADD: %w", err)
	}
	if err := checkAttached(sides, o.Pods); err != nil {
		return r, err
	}
	e.Logf("CNI: timing DEL")
	dels, err := interleave(ctx, node, sides, o.Pods, func(s *cniSide, i int) error {
		return s.cni.DelNetworkList(ctx, s.list, runtimeConf(s, i))
	})
	if err != nil {
		return r, fmt.Errorf("DEL: %w", err)
	}
	r.OursAdd, r.RefAdd, r.OursDel, r.RefDel = adds[0], adds[1], dels[0], dels[1]
	e.Logf("CNI, %d pods: ADD p50 %v/%v p99 %v/%v; DEL p50 %v/%v p99 %v/%v (ovsmesh/reference)", o.Pods,
		Percentile(r.OursAdd, 50), Percentile(r.RefAdd, 50), Percentile(r.OursAdd, 99), Percentile(r.RefAdd, 99),
		Percentile(r.OursDel, 50), Percentile(r.RefDel, 50), Percentile(r.OursDel, 99), Percentile(r.RefDel, 99))
	return r, nil
}

func runtimeConf(s *cniSide, i int) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: "ctr-" + s.pods[i], NetNS: "/run/netns/" + s.pods[i], IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "bench"}, {"K8S_POD_NAME", s.pods[i]}}}
}

// interleave runs op for pod i of each side, alternating which side goes first, inside the
// node namespace, and returns the durations per side.
func interleave(ctx context.Context, node string, sides []*cniSide, n int, op func(*cniSide, int) error) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(sides))
	err := ns.WithNetNSPath("/run/netns/"+node, func(ns.NetNS) error {
		for i := 0; i < n; i++ {
			for k := range sides {
				j := k
				if i%2 == 1 {
					j = len(sides) - 1 - k
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				t0 := time.Now()
				if err := op(sides[j], i); err != nil {
					return fmt.Errorf("%s pod %d: %w", sides[j].name, i, err)
				}
				out[j] = append(out[j], time.Since(t0))
			}
		}
		return nil
	})
	return out, err
}

// checkAttached asserts every pod of both sides got its eth0 with an address.
func checkAttached(sides []*cniSide, n int) error {
	for _, s := range sides {
		for _, p := range []int{0, n / 2, n - 1} {
			var addrs []netlink.Addr
			err := ns.WithNetNSPath("/run/netns/"+s.pods[p], func(ns.NetNS) error {
				l, err := netlink.LinkByName("eth0")
				if err != nil {
					return err
				}
				addrs, err = netlink.AddrList(l, netlink.FAMILY_V4)
				return err
			})
			if err != nil || len(addrs) != 1 {
				return fmt.Errorf("%s: pod %s after ADD: %d addresses, %v", s.name, s.pods[p], len(addrs), err)
			}
		}
	}
	return nil
}

// addBridge creates a Linux bridge with the gateway (first) address of subnet in node.
func addBridge(node, name string, subnet netip.Prefix, mtu int) error {
	return ns.WithNetNSPath("/run/netns/"+node, func(ns.NetNS) error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = name, mtu
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		gw := subnet.Addr().Next()
		if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(br)
	})
}

func newCNIConfig(path []string, cacheDir string) *libcni.CNIConfig {
	ex := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	return libcni.NewCNIConfigWithCacheDir(path, cacheDir, ex)
}

const cniMTU = 1450

// ovsmeshSide renders the conflist exactly as the agent does (config.Render).
func ovsmeshSide(e *Env, node, bin, bridge string, subnet netip.Prefix) (*cniSide, error) {
	if err := addBridge(node, bridge, subnet, cniMTU); err != nil {
		return nil, err
	}
	b, err := config.Render(config.Input{Name: "bench-ovsmesh", CNIVersion: cniVersion, Bridge: bridge, Subnet: subnet,
		Gateway: subnet.Addr().Next(), ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), MTU: cniMTU,
		IPAMDataDir: filepath.Join(e.Dir, "ipam")})
	if err != nil {
		return nil, err
	}
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	return &cniSide{name: "o", list: l, cni: newCNIConfig([]string{bin, "/usr/lib/cni"}, filepath.Join(e.Dir, "cache-o"))}, nil
}

// referenceSide is the equivalent conflist for Debian's bridge plugin.
func referenceSide(e *Env, node, bin, bridge string, subnet netip.Prefix) (*cniSide, error) {
	if err := addBridge(node, bridge, subnet, cniMTU); err != nil {
		return nil, err
	}
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       "bench-reference",
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": bridge, "isGateway": false, "ipMasq": false, "mtu": cniMTU,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": subnet.String(), "gateway": subnet.Addr().Next().String()}}},
				"routes":  []map[string]string{{"dst": "10.244.0.0/16"}, {"dst": "0.0.0.0/0"}},
				"dataDir": filepath.Join(e.Dir, "ipam"),
			},
		}},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	// Only Debian's directory: the reference runs the reference binaries.
	return &cniSide{name: "r", list: l, cni: newCNIConfig([]string{"/usr/lib/cni"}, filepath.Join(e.Dir, "cache-r"))}, nil
}
