package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// AgentRSSOptions sizes the agent memory benchmark.
type AgentRSSOptions struct {
	Peers int // NodeSubnets besides the agent's own (1,000 in the report)
	// PeerStatus fills every peer's NodeSubnet status as its own agent would in a real
	// cluster (Ready, the tunnel counts, a few unhealthy peers), so the agent's NodeSubnet
	// cache holds what it holds in production, not specs only.
	PeerStatus bool
	// Samples of VmRSS, one a second after a 5 s pause (default 10; 1 takes one at once:
	// smoke runs).
	Samples int
}

// AgentRSSResult is the agent's resident memory once it has converged with Peers tunnels.
type AgentRSSResult struct {
	Peers      int
	PeerStatus bool
	RSS        int64 // bytes, VmRSS
	HWM        int64 // bytes, VmHWM (peak RSS)
	// Anon and File split RSS: the heap and stacks, and the binary's pages (shared with
	// the page cache, reclaimable).
	Anon, File int64
	Converged  time.Duration
	// JoinBytes: sent by the agent to the API server when one more peer joins; ListBytes:
	// a LIST of every NodeSubnet (JSON).
	JoinBytes, ListBytes int64
}

// Budgets: agent RSS 32 MiB; one peer's join costs at most 2 KB from each agent; a full
// NodeSubnet LIST at 1,000 nodes at most 2 MB.
const (
	agentRSSLimit  = 32 << 20
	joinBytesLimit = 2 << 10
	listBytesLimit = 2 << 20
)

// Figures: RSS against the 32 MiB budget (the ratio is RSS / 32 MiB; target ≤ 1.0×), the
// bytes one join costs against 2 KB and, with peer status, the LIST against 2 MB.
func (r AgentRSSResult) Figures() []Figure {
	what := "peers' NodeSubnets without status"
	if r.PeerStatus {
		what = "peers' NodeSubnets with the status their agents write, as in a real cluster"
	}
	f := AtMost(fmt.Sprintf("agent RSS with %d peers (%s) vs the 32 MiB budget", r.Peers, what),
		mib(r.RSS), "32 MiB", Ratio(float64(r.RSS), agentRSSLimit), 1.0)
	f.Note = fmt.Sprintf("peak (VmHWM) %s; of the RSS %s anonymous (heap, stacks) and %s the binary's file pages; converged %s after start",
		mib(r.HWM), mib(r.Anon), mib(r.File), secs(r.Converged))
	figs := []Figure{f}
	figs = append(figs, AtMost(fmt.Sprintf("bytes one agent (%d peers, %s) sends to the API server when one more peer joins, vs 2 KB", r.Peers, what),
		fmt.Sprintf("%d B", r.JoinBytes), "2,048 B", Ratio(float64(r.JoinBytes), joinBytesLimit), 1.0))
	if r.PeerStatus {
		figs = append(figs, AtMost(fmt.Sprintf("a LIST of all %d NodeSubnets, every status filled, vs 2 MB", r.Peers+1),
			fmt.Sprintf("%.2f MB", float64(r.ListBytes)/(1<<20)), "2 MB", Ratio(float64(r.ListBytes), listBytesLimit), 1.0))
	}
	return figs
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// AgentRSS runs the real ovsmesh-agent binary in a network namespace of its own, with a
// private ovsdb-server and ovs-vswitchd (userspace datapath) there, against a fresh
// kube-apiserver holding the NetworkCluster and opts.Peers+1 NodeSubnets, waits until the
// agent reports opts.Peers tunnels in its NodeSubnet status (Ready, or not yet only because
// spanning tree is still opening ports), lets it settle, and reads VmRSS (median of 10
// samples over 10 s) and VmHWM from /proc/<pid>/status. Without opts.PeerStatus the peers'
// NodeSubnets carry no status (no other agents run), so the agent's cache holds specs only;
// with it, each carries what its agent would write (see fillPeerStatus), as in a real cluster.
func AgentRSS(ctx context.Context, e *Env, o AgentRSSOptions) (AgentRSSResult, error) {
	r := AgentRSSResult{Peers: o.Peers, PeerStatus: o.PeerStatus}
	if err := RequireTools("ip", "ovs-vswitchd", "ovs-appctl"); err != nil {
		return r, err
	}
	bin := filepath.Join(e.Dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/ovsmesh-agent")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return r, fmt.Errorf("building the agent: %v: %s", err, out)
	}
	k := e.Next()
	node := fmt.Sprintf("%s-agent%d", e.Prefix, k)
	if err := e.AddNetns(ctx, node); err != nil {
		return r, err
	}
	const nodeIP = "172.31.0.1"
	for _, c := range [][]string{
		// No dummy module on this kernel: a veth pair inside the namespace.
		{"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"},
		{"ip", "link", "set", "eth0p", "up"},
		{"ip", "addr", "add", nodeIP + "/16", "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
	} {
		if _, err := inNS(ctx, node, c...); err != nil {
			return r, err
		}
	}
	db, err := e.StartOVSDB(ctx, fmt.Sprintf("agentovs%d", k), node)
	if err != nil {
		return r, err
	}
	ctl, err := startVswitchd(ctx, e, db, node)
	if err != nil {
		return r, err
	}

	api, err := startAPI(e, fmt.Sprintf("agent%d", k))
	if err != nil {
		return r, err
	}
	u, err := url.Parse(api.env.Config.Host)
	if err != nil {
		return r, err
	}
	sent, err := e.forwardAPI(node, u.Host, u.Host)
	if err != nil {
		return r, err
	}
	c := api.env.Client
	nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName},
		Spec: v1alpha1.NetworkClusterSpec{ClusterCIDR: ipamClusterCIDR, NodeSubnetPrefixLength: ipamPrefixLen, DatapathType: "netdev",
			// SplitHorizon: a 1,001-node mesh is beyond STP's port limit (the agent would
			// refuse it) and would wait minutes for RSTP; the agent's memory is the same.
			Tunnel: v1alpha1.TunnelSpec{Type: "VXLAN"}, LoopPrevention: v1alpha1.LoopPreventionSpec{Protocol: v1alpha1.ProtocolSplitHorizon}}}
	if err := c.Create(ctx, nc); err != nil {
		return r, err
	}
	self := "bench-self"
	if err := createNode(ctx, c, self, nodeIP); err != nil {
		return r, err
	}
	if err := createSubnet(ctx, c, self, 0, nodeIP); err != nil {
		return r, err
	}
	for i := 1; i <= o.Peers; i++ {
		if err := createSubnet(ctx, c, fmt.Sprintf("bench-peer-%05d", i), i, fmt.Sprintf("198.18.%d.%d", i/250, 1+i%250)); err != nil {
			return r, err
		}
	}
	if o.PeerStatus {
		if err := fillPeerStatus(ctx, c, o.Peers); err != nil {
			return r, err
		}
	}
	e.Logf("agent RSS: %d NodeSubnets created (peer status: %v); starting the agent", o.Peers+1, o.PeerStatus)
	t0 := time.Now()
	agent, err := e.Start(fmt.Sprintf("ovsmesh-agent%d", k), node, []string{"KUBECONFIG=" + api.kubeconfig},
		filepath.Join(bin, "ovsmesh-agent"), "--node-name="+self, "--ovsdb-socket="+db.Sock, "--vswitchd-ctl="+ctl,
		"--cni-conf-dir="+filepath.Join(e.Dir, fmt.Sprintf("net.d%d", k)), "--cni-ipam-data-dir="+filepath.Join(e.Dir, "ipam"),
		// No pod is ever attached here, so no plugins are installed: no plugin check.
		"--cni-bin-dir=")
	if err != nil {
		return r, err
	}
	var s v1alpha1.NodeSubnet
	var gerr error
	err = waitFor(ctx, 5*time.Minute, 200*time.Millisecond, func() bool {
		if gerr = c.Get(ctx, client.ObjectKey{Name: self}, &s); agent.Exited() || gerr != nil {
			return agent.Exited()
		}
		ready := apimeta.FindStatusCondition(s.Status.Conditions, "Ready")
		return ready != nil && ready.Status == metav1.ConditionTrue &&
			int(s.Status.TunnelCount) == o.Peers && int(s.Status.Tunnels.Forwarding) == o.Peers
	})
	if err != nil || agent.Exited() {
		return r, fmt.Errorf("agent did not report Ready with %d tunnels (%v; exited %v; last get: %v; status: tunnelCount %d, tunnels %+v, conditions %+v); log:\n%s",
			o.Peers, err, agent.Exited(), gerr, s.Status.TunnelCount, s.Status.Tunnels, s.Status.Conditions, agent.Tail(15))
	}
	r.Converged = time.Since(t0)
	out, err := db.Vsctl(ctx, "--bare", "--columns=name", "find", "Interface", "type=vxlan")
	if err != nil {
		return r, err
	}
	if n := len(strings.Fields(out)); n != o.Peers {
		return r, fmt.Errorf("agent reports Ready but OVS has %d VXLAN interfaces, want %d", n, o.Peers)
	}
	// RSS right after the burst of work is not what the agent holds at rest, and a Go
	// process's RSS moves with its garbage collections: sample once a second after a 5 s
	// pause and keep the median.
	if o.Samples == 0 {
		o.Samples = 10
	}
	if o.Samples > 1 {
		time.Sleep(5 * time.Second)
	}
	var samples []time.Duration // bytes, in a Duration so Percentile applies
	for i := 0; i < o.Samples; i++ {
		m, err := procMem(agent.Pid())
		if err != nil {
			return r, err
		}
		samples, r.HWM, r.Anon, r.File = append(samples, time.Duration(m["VmRSS"])), m["VmHWM"], m["RssAnon"], m["RssFile"]
		if i < o.Samples-1 {
			time.Sleep(time.Second)
		}
	}
	r.RSS = int64(Percentile(samples, 50))
	e.Logf("agent RSS with %d peers: VmRSS %s, VmHWM %s, converged in %v", o.Peers, mib(r.RSS), mib(r.HWM), r.Converged)

	// What every watcher pays: one LIST of all NodeSubnets, as `kubectl get nsub -o json`.
	if r.ListBytes, err = listBytes(ctx, api); err != nil {
		return r, err
	}
	// One peer joins: everything the agent sends to the API server from then until its
	// status shows the new tunnel, and 2 s more.
	before := sent.Load()
	peer := o.Peers + 1
	if err := createSubnet(ctx, c, fmt.Sprintf("bench-peer-%05d", peer), peer, fmt.Sprintf("198.18.%d.%d", peer/250, 1+peer%250)); err != nil {
		return r, err
	}
	err = waitFor(ctx, time.Minute, 50*time.Millisecond, func() bool {
		return c.Get(ctx, client.ObjectKey{Name: self}, &s) == nil && int(s.Status.Tunnels.Forwarding) == peer &&
			apimeta.IsStatusConditionTrue(s.Status.Conditions, "Ready")
	})
	if err != nil {
		return r, fmt.Errorf("agent status did not show the joining peer: %w (tunnels %+v)", err, s.Status.Tunnels)
	}
	time.Sleep(2 * time.Second)
	r.JoinBytes = sent.Load() - before
	e.Logf("agent with %d peers: one peer joins → %d bytes sent to the API server; NodeSubnet LIST %d bytes", o.Peers, r.JoinBytes, r.ListBytes)
	return r, nil
}

// listBytes is the size of the JSON a full NodeSubnet LIST returns.
func listBytes(ctx context.Context, api *apiServer) (int64, error) {
	hc, err := rest.HTTPClientFor(api.cfg)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(api.cfg.Host, "/")+"/apis/"+v1alpha1.GroupVersion.String()+"/nodesubnets", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("LIST nodesubnets: %s", resp.Status)
	}
	return io.Copy(io.Discard, resp.Body)
}

// fillPeerStatus writes into every peer's NodeSubnet the status its agent would report in a
// healthy mesh: Ready, the tunnel count and summary, the MTU, with a merge patch of the
// status subresource as agents do.
func fillPeerStatus(ctx context.Context, c client.Client, peers int) error {
	type node struct{ name, ip string }
	all := []node{{"bench-self", "172.31.0.1"}}
	for i := 1; i <= peers; i++ {
		all = append(all, node{fmt.Sprintf("bench-peer-%05d", i), fmt.Sprintf("198.18.%d.%d", i/250, 1+i%250)})
	}
	work := make(chan int)
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func() {
			var err error
			for i := range work {
				if err != nil {
					continue
				}
				var s v1alpha1.NodeSubnet
				if err = c.Get(ctx, client.ObjectKey{Name: all[i].name}, &s); err != nil {
					continue
				}
				orig := s.DeepCopy()
				s.Status = peerStatus(peers)
				err = c.Status().Patch(ctx, &s, client.MergeFrom(orig))
			}
			errs <- err
		}()
	}
	for i := 1; i < len(all); i++ {
		work <- i
	}
	close(work)
	for w := 0; w < 8; w++ {
		if err := <-errs; err != nil {
			return fmt.Errorf("writing peer status: %w", err)
		}
	}
	return nil
}

// peerStatus is what a Ready agent with peers tunnels in a healthy mesh writes (BFD on, every
// peer up, so no unhealthy peers).
func peerStatus(peers int) v1alpha1.NodeSubnetStatus {
	n := int32(peers)
	return v1alpha1.NodeSubnetStatus{ObservedGeneration: 1, TunnelCount: n, MTU: 1450,
		Tunnels: v1alpha1.TunnelSummary{Desired: n, Live: n, Forwarding: n, Up: n},
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Applied",
			Message:            fmt.Sprintf("%d vxlan tunnels on obr0 (SplitHorizon), MTU 1450, BFD: %d/%d peers up", peers, peers, peers),
			LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}}
}

// createSubnet creates the NodeSubnet of node i in ipamClusterCIDR (100.64.0.0/10) as the
// operator would.
func createSubnet(ctx context.Context, c client.Client, name string, i int, nodeIP string) error {
	cidr := fmt.Sprintf("100.%d.%d.0/24", 64+i/256, i%256)
	gw := fmt.Sprintf("100.%d.%d.1", 64+i/256, i%256)
	s := &v1alpha1.NodeSubnet{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.NodeSubnetSpec{NodeName: name, CIDR: cidr, Gateway: gw, NodeIP: nodeIP}}
	return c.Create(ctx, s)
}

// startVswitchd starts ovs-vswitchd on db inside netns ns and waits until it answers.
func startVswitchd(ctx context.Context, e *Env, db *OVSDB, ns string) (string, error) {
	ctl := filepath.Join(db.Dir, "vswitchd.ctl")
	p, err := e.Start(filepath.Base(db.Dir)+"-vswitchd", ns, db.env(), "ovs-vswitchd", "unix:"+db.Sock,
		"--pidfile="+filepath.Join(db.Dir, "vswitchd.pid"), "--unixctl="+ctl, "--no-chdir",
		"--log-file="+filepath.Join(db.Dir, "vswitchd.log"))
	if err != nil {
		return "", err
	}
	// exit --cleanup removes the datapath's taps; registered after Start, so it runs first.
	e.Defer(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = run(cctx, "ovs-appctl", "-t", ctl, "exit", "--cleanup")
	})
	err = waitFor(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		out, err := run(ctx, "ovs-appctl", "-t", ctl, "version")
		return (err == nil && strings.Contains(out, "ovs-vswitchd")) || p.Exited()
	})
	if err != nil || p.Exited() {
		return "", fmt.Errorf("ovs-vswitchd did not come up (%v): %s", err, p.Tail(5))
	}
	return ctl, nil
}

// procMem reads the memory lines of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile, ...)
// in bytes.
func procMem(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		out[k] = n << 10
	}
	if out["VmRSS"] == 0 {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return out, nil
}
