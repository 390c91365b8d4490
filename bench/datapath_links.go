package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovsmesh/ovsmesh/internal/harness"
)

// The kbr0–obr0 link, side by side. At a 1500-byte underlay the pod path is per-packet CPU
// work in ovs-vswitchd (section 5 of BENCHMARKS.md), so the link the pods' packets take into
// OVS is where the design leaves room. Three links, same cluster, same run:
//
//   - veth: what the agent builds (vkbr0 in kbr0, vobr0 a "system" port: ovs-vswitchd reads
//     it through AF_PACKET);
//   - internal: obr0's own interface enslaved to kbr0, as the original design has it (with
//     the userspace datapath a tap: ovs-vswitchd reads and writes it directly);
//   - afxdp: the veth again, its OVS end a `type=afxdp` port in native XDP mode, polled by a
//     PMD thread that sleeps when idle (other_config:pmd-maxsleep, OVS 3.1), since a PMD
//     that spins takes a whole core of this 2-core machine from the iperf3 ends.
//
// The agents are stopped before the link is changed (they would put the veth back) and the
// changes are made with ip and ovs-vsctl, the way an operator would try them.

// LinkRun is one link's figures on one tunnel type.
type LinkRun struct {
	Tunnel, Link     string
	PodPod, NodeNode float64 // bits/s
	// VswitchdCPU is the CPU time both nodes' ovs-vswitchd used during the pod→pod run, in
	// cores (1.0 = one core busy throughout).
	VswitchdCPU float64
	MTU         int
}

// LinkResult holds every link on every tunnel type.
type LinkResult struct{ Runs []LinkRun }

// Figures: pod→pod over node→node for each link (target ≥ 0.8×), and each link's pod→pod
// over the veth's on the same tunnel (information: what the link alone changes).
func (r LinkResult) Figures() []Figure {
	var out []Figure
	veth := map[string]float64{}
	for _, run := range r.Runs {
		if run.Link == "veth" {
			veth[run.Tunnel] = run.PodPod
		}
	}
	for _, run := range r.Runs {
		f := AtLeast(fmt.Sprintf("data path, kbr0–obr0 link %s: iperf3 pod→pod over %s vs node→node through OVS", run.Link, run.Tunnel),
			gbps(run.PodPod), gbps(run.NodeNode), Ratio(run.PodPod, run.NodeNode), 0.8)
		f.Note = fmt.Sprintf("pod MTU %d; ovs-vswitchd of both nodes %.2f cores; pod→pod %.2f× the veth's", run.MTU, run.VswitchdCPU, Ratio(run.PodPod, veth[run.Tunnel]))
		out = append(out, f)
	}
	return out
}

// DatapathLinks measures the three links on a 2-node cluster of its own for each tunnel
// type (the agents are stopped halfway, so the cluster is not reused).
func DatapathLinks(ctx context.Context, e *Env, tunnels []string, d time.Duration) (LinkResult, error) {
	var r LinkResult
	if err := RequireTools("iperf3", "ovs-vsctl"); err != nil {
		return r, err
	}
	for _, tun := range tunnels {
		runs, err := linksOver(ctx, e, tun, d)
		r.Runs = append(r.Runs, runs...)
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// linksOver measures the three links, in turn, on a fresh cluster whose tunnels are tun. The
// cluster is closed on return, so the next one starts on a quiet machine.
func linksOver(ctx context.Context, e *Env, tun string, d time.Duration) ([]LinkRun, error) {
	c, err := StartCluster(ctx, e, ClusterOptions{Nodes: 2, Tunnel: tun, Protocol: "RSTP", FastTimers: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var runs []LinkRun
	for i, link := range []string{"veth", "internal", "afxdp"} {
		switch link {
		case "internal":
			for _, n := range c.Nodes {
				n.StopAgent()
			}
			err = linkInternal(ctx, c)
		case "afxdp":
			err = linkAFXDP(ctx, c)
		}
		var run LinkRun
		if err == nil {
			run, err = linkRun(ctx, e, c, fmt.Sprintf("l%d%s", i, tun), d)
		}
		if err != nil {
			return runs, fmt.Errorf("%s, link %s: %w", tun, link, err)
		}
		run.Tunnel, run.Link = tun, link
		e.Logf("data path, link %s over %s: pod→pod %s (MTU %d), node→node %s, ovs-vswitchd %.2f cores",
			link, tun, gbps(run.PodPod), run.MTU, gbps(run.NodeNode), run.VswitchdCPU)
		runs = append(runs, run)
	}
	return runs, nil
}

// linkRun measures pod→pod between fresh pods (with the ovs-vswitchd CPU it took) and
// node→node right after.
func linkRun(ctx context.Context, e *Env, c *harness.Cluster, tag string, d time.Duration) (LinkRun, error) {
	var run LinkRun
	before, err := vswitchdCPU(c)
	if err != nil {
		return run, err
	}
	t0 := time.Now()
	if run.PodPod, run.MTU, err = podToPod(ctx, e, c, tag, d); err != nil {
		return run, err
	}
	after, err := vswitchdCPU(c)
	if err != nil {
		return run, err
	}
	// The window includes the pods' set-up and the first ping (a small share of a 10 s run).
	run.VswitchdCPU = (after - before) / time.Since(t0).Seconds()
	n1, n2 := c.Nodes[0], c.Nodes[1]
	run.NodeNode, err = iperf(ctx, e, n1.NS, endpoint{ns: n2.NS, ip: n2.IP}, d)
	return run, err
}

// linkInternal replaces the veth by obr0's own interface on every node: the veth port and
// the pair go, obr0 gets kbr0's MTU (mtu_request: ovs-vswitchd owns the tap) and joins kbr0.
func linkInternal(ctx context.Context, c *harness.Cluster) error {
	for _, n := range c.Nodes {
		mtu, err := linkMTU(ctx, n, "kbr0")
		if err != nil {
			return err
		}
		if out, err := n.Vsctl(ctx, "del-port", "obr0", "vobr0", "--", "set", "Interface", "obr0", "mtu_request="+mtu); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		if _, err := n.Exec(ctx, "ip", "link", "del", "vobr0"); err != nil {
			return err
		}
		if err := waitFor(ctx, 20*time.Second, 100*time.Millisecond, func() bool {
			m, err := linkMTU(ctx, n, "obr0")
			return err == nil && m == mtu
		}); err != nil {
			return fmt.Errorf("%s: obr0 did not take MTU %s: %w", n.Name, mtu, err)
		}
		if _, err := n.Exec(ctx, "ip", "link", "set", "obr0", "master", "kbr0", "up"); err != nil {
			return err
		}
	}
	return nil
}

// linkAFXDP takes obr0 out of kbr0 again and puts a veth back, its OVS end an AF_XDP port
// (native mode) whose PMD thread sleeps up to 500 µs when idle.
func linkAFXDP(ctx context.Context, c *harness.Cluster) error {
	for _, n := range c.Nodes {
		mtu, err := linkMTU(ctx, n, "kbr0")
		if err != nil {
			return err
		}
		for _, s := range [][]string{
			{"ip", "link", "set", "obr0", "nomaster"},
			{"ip", "link", "add", "vobr0", "mtu", mtu, "type", "veth", "peer", "name", "vkbr0", "mtu", mtu},
			{"ip", "link", "set", "vkbr0", "master", "kbr0", "up"},
			{"ip", "link", "set", "vobr0", "up"},
		} {
			if _, err := n.Exec(ctx, s...); err != nil {
				return err
			}
		}
		offloadsOff(ctx, n.NS, "vobr0")
		offloadsOff(ctx, n.NS, "vkbr0")
		if out, err := n.Vsctl(ctx, "set", "Open_vSwitch", ".", "other_config:pmd-maxsleep=500", "--",
			"add-port", "obr0", "vobr0", "--", "set", "Interface", "vobr0", "type=afxdp", "options:xdp-mode=native"); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		if err := waitFor(ctx, 20*time.Second, 200*time.Millisecond, func() bool {
			out, err := n.Vsctl(ctx, "get", "Interface", "vobr0", "ofport")
			return err == nil && strings.TrimSpace(out) != "[]" && strings.TrimSpace(out) != "-1"
		}); err != nil {
			out, _ := n.Vsctl(ctx, "get", "Interface", "vobr0", "error")
			return fmt.Errorf("%s: the AF_XDP port did not come up (%s): %w", n.Name, strings.TrimSpace(out), err)
		}
	}
	return nil
}

// linkMTU reads the MTU of a link of node n, as ip takes it.
func linkMTU(ctx context.Context, n *harness.Node, link string) (string, error) {
	out, err := n.Exec(ctx, "cat", "/sys/class/net/"+link+"/mtu")
	return strings.TrimSpace(out), err
}

// vswitchdCPU sums the CPU time (user + system, seconds) of every node's ovs-vswitchd.
func vswitchdCPU(c *harness.Cluster) (float64, error) {
	var sum float64
	for _, n := range c.Nodes {
		b, err := os.ReadFile(filepath.Join(n.Dir, "ovs-vswitchd.pid"))
		if err != nil {
			return 0, err
		}
		s, err := procCPU(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// procCPU reads utime + stime of pid from /proc/PID/stat, in seconds (USER_HZ = 100 on
// Linux).
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	return (u + s) / 100, nil
}
