package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// IPAM benchmark constants: a /10 cut into /24s (16,384 subnets) on both sides, since a /16
// holds only 256. 100.64.0.0/10 and not 10.0.0.0/8: the API server's Service CIDR
// (10.0.0.0/24 under envtest) must stay outside the cluster CIDR, or the operator allocates
// nothing (Degraded ServiceCIDRConflict).
const (
	ipamClusterCIDR = "100.64.0.0/10"
	ipamPrefixLen   = 24
	operatorNS      = "ovsmesh-system"
)

// IPAMOptions sizes the IPAM benchmark.
type IPAMOptions struct {
	Nodes   int // Node objects created (1,000 and 5,000 in the report)
	Workers int // concurrent creators (default 32)
	// SharedAPI runs both sides on one control plane, one after the other, each controller
	// stopped after its side (smoke runs: saves starting a second etcd + API server). The
	// report always uses a fresh one per side.
	SharedAPI bool
	// AlsoUnthrottledKCM adds a third side: kube-controller-manager with its client rate limit
	// lifted (--kube-api-qps/--kube-api-burst 10000; its defaults are 20/30, and every
	// allocation costs it one PATCH), for a reference not bound by that limit.
	AlsoUnthrottledKCM bool
	// NoDefaultKCM leaves out the side with kube-controller-manager's default client settings
	// (~250 s at 5,000 nodes), for quick comparisons against the unthrottled one.
	NoDefaultKCM bool
	// OursFirst runs the ovsmesh side before the kube-controller-manager sides (the order
	// can matter on a shared machine: run both to see).
	OursFirst bool
	// Profile serves the manager's metrics on loopback and logs, after its side, its API
	// requests by verb and status and its reconcile count and time: where ovsmesh's time goes.
	Profile bool
}

// IPAMResult is the time from the first Node create until every node has its subnet, per
// side, and how long creating the nodes alone took on each side. Ref and RefCreate are 0 when
// the side with kube-controller-manager's defaults did not run (NoDefaultKCM).
type IPAMResult struct {
	Nodes                 int
	Ours, Ref             time.Duration // ovsmesh NodeSubnets; kube-controller-manager podCIDRs
	OursCreate, RefCreate time.Duration
	RefFast               time.Duration // kube-controller-manager unthrottled (0: not run)
	RefFastCreate         time.Duration
}

// Figures: ovsmesh's time over kube-controller-manager's (target ≤ 1.0×).
func (r IPAMResult) Figures() []Figure {
	f := AtMost(fmt.Sprintf("IPAM: %d nodes, all NodeSubnets (ovsmesh) vs all podCIDRs (kube-controller-manager)", r.Nodes),
		secs(r.Ours), secs(r.Ref), DurRatio(r.Ours, r.Ref), 1.0)
	f.Note = fmt.Sprintf("creating the %d Nodes (create + InternalIP status) took %s / %s of that", r.Nodes, secs(r.OursCreate), secs(r.RefCreate))
	var out []Figure
	if r.Ref > 0 {
		out = append(out, f)
	}
	if r.RefFast > 0 {
		fast := AtMost(fmt.Sprintf("IPAM: %d nodes, ovsmesh vs kube-controller-manager with --kube-api-qps=10000", r.Nodes),
			secs(r.Ours), secs(r.RefFast), DurRatio(r.Ours, r.RefFast), 1.0)
		fast.Note = fmt.Sprintf("creating the %d Nodes took %s / %s of that", r.Nodes, secs(r.OursCreate), secs(r.RefFastCreate))
		out = append(out, fast)
	}
	return out
}

// IPAM creates opts.Nodes Nodes, each with an InternalIP, in a fresh etcd + kube-apiserver
// per side, and measures from the first create until every node is allocated: a NodeSubnet
// from the ovsmesh operator (the real manager binary, started before the clock with the
// NetworkCluster in place), or node.spec.podCIDR from kube-controller-manager's
// node-ipam-controller (the real binary, --allocate-node-cidrs, same CIDR and mask size).
// Both controllers run with their default client settings. Each side's controller first
// allocates one warm-up node before the clock starts, so both are known to have synced their
// caches. Completion is observed through a watch (no polling load on the API server), and the
// result is checked: every node allocated, no subnet handed out twice.
func IPAM(ctx context.Context, e *Env, o IPAMOptions) (IPAMResult, error) {
	r := IPAMResult{Nodes: o.Nodes}
	if o.Workers == 0 {
		o.Workers = 32
	}
	assets, err := testenv.AssetsDir()
	if err != nil {
		return r, err
	}
	kcmBin := filepath.Join(assets, "kube-controller-manager")
	if _, err := os.Stat(kcmBin); err != nil {
		return r, fmt.Errorf("%s: run `make testbed`", kcmBin)
	}
	bin := filepath.Join(e.Dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/manager")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return r, fmt.Errorf("building the manager: %v: %s", err, out)
	}

	// kube-controller-manager first unless OursFirst: the order is the same in every run, and
	// the sides do not share anything (each gets its own etcd and API server, stopped before
	// the next).
	var shared *apiServer
	if o.SharedAPI {
		if shared, err = startAPI(e, "shared"); err != nil {
			return r, err
		}
	}
	kcm := func(extra ...string) func(api *apiServer) (allocated, *Proc, error) {
		return func(api *apiServer) (allocated, *Proc, error) {
			args := append([]string{"--kubeconfig=" + api.kubeconfig, "--controllers=node-ipam-controller",
				"--allocate-node-cidrs=true", "--cluster-cidr=" + ipamClusterCIDR, fmt.Sprintf("--node-cidr-mask-size=%d", ipamPrefixLen),
				"--leader-elect=false", "--use-service-account-credentials=false", "--secure-port=0"}, extra...)
			p, err := e.Start("kube-controller-manager", "", nil, append([]string{kcmBin}, args...)...)
			return podCIDRs, p, err
		}
	}
	ours := func() error {
		metricsAddr := "0"
		var scrapeToken string
		if o.Profile {
			if metricsAddr, err = freeLoopbackAddr(); err != nil {
				return err
			}
			beforeStop = func() {
				// The clock stops at the last NodeSubnet; the fence read of the last pass comes
				// after it. Counting requests per allocation needs it too.
				settled := waitIPAMIdle(ctx, metricsAddr, scrapeToken, 2*time.Minute)
				e.Logf("IPAM ovsmesh manager profile (%s):\n%s\n%s", settled, scrapeProfile(metricsAddr, scrapeToken), allocationSpan(filepath.Join(e.Dir, "manager.log")))
			}
			defer func() { beforeStop = nil }()
		}
		r.Ours, r.OursCreate, err = ipamSide(ctx, e, "ovsmesh", shared, o, func(api *apiServer) (allocated, *Proc, error) {
			c := api.env.Client
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}}); err != nil {
				return nil, nil, err
			}
			if o.Profile {
				if scrapeToken, err = testenv.MetricsToken(ctx, api.cfg, "bench-scraper", true); err != nil {
					return nil, nil, err
				}
			}
			nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName},
				Spec: v1alpha1.NetworkClusterSpec{ClusterCIDR: ipamClusterCIDR, NodeSubnetPrefixLength: ipamPrefixLen, DatapathType: "netdev"}}
			if err := c.Create(ctx, nc); err != nil {
				return nil, nil, err
			}
			p, err := e.Start("manager", "", []string{"KUBECONFIG=" + api.kubeconfig, "POD_NAMESPACE=" + operatorNS},
				filepath.Join(bin, "manager"), "--metrics-bind-address="+metricsAddr, "--health-probe-bind-address=0")
			return nodeSubnets, p, err
		})
		if err != nil {
			return fmt.Errorf("ovsmesh side: %w", err)
		}
		return nil
	}
	if o.OursFirst {
		if err := ours(); err != nil {
			return r, err
		}
	}
	if !o.NoDefaultKCM {
		if r.Ref, r.RefCreate, err = ipamSide(ctx, e, "kcm", shared, o, kcm()); err != nil {
			return r, fmt.Errorf("kube-controller-manager side: %w", err)
		}
	}
	if o.AlsoUnthrottledKCM {
		r.RefFast, r.RefFastCreate, err = ipamSide(ctx, e, "kcmfast", shared, o, kcm("--kube-api-qps=10000", "--kube-api-burst=10000"))
		if err != nil {
			return r, fmt.Errorf("unthrottled kube-controller-manager side: %w", err)
		}
	}
	if !o.OursFirst {
		if err := ours(); err != nil {
			return r, err
		}
	}
	e.Logf("IPAM, %d nodes: ovsmesh %v (creating %v), kube-controller-manager %v (creating %v), unthrottled %v (creating %v)", o.Nodes, r.Ours, r.OursCreate, r.Ref, r.RefCreate, r.RefFast, r.RefFastCreate)
	return r, nil
}

// apiServer is one side's fresh control plane.
type apiServer struct {
	env        *testenv.Env
	cfg        *rest.Config // unthrottled: the creators must not be the bottleneck
	kubeconfig string
}

func startAPI(e *Env, name string) (*apiServer, error) {
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	api := &apiServer{env: env}
	stop := func() { _ = env.Stop() }
	admin, err := env.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		stop()
		return nil, err
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		stop()
		return nil, err
	}
	api.kubeconfig = filepath.Join(e.Dir, name+".kubeconfig")
	if err := os.WriteFile(api.kubeconfig, kc, 0o600); err != nil {
		stop()
		return nil, err
	}
	api.cfg = rest.CopyConfig(env.Config)
	api.cfg.QPS, api.cfg.Burst = -1, 0
	e.Defer(stop)
	return api, nil
}

// allocated watches one side's result and reports the CIDR of every allocated node.
type allocated func(ctx context.Context, c client.WithWatch, found func(node, cidr string)) error

// podCIDRs reports nodes whose spec.podCIDR is set.
func podCIDRs(ctx context.Context, c client.WithWatch, found func(node, cidr string)) error {
	return watchAll(ctx, c, &corev1.NodeList{}, func(o client.Object) {
		if n := o.(*corev1.Node); n.Spec.PodCIDR != "" {
			found(n.Name, n.Spec.PodCIDR)
		}
	})
}

// nodeSubnets reports NodeSubnets.
func nodeSubnets(ctx context.Context, c client.WithWatch, found func(node, cidr string)) error {
	return watchAll(ctx, c, &v1alpha1.NodeSubnetList{}, func(o client.Object) {
		if s := o.(*v1alpha1.NodeSubnet); s.Spec.CIDR != "" {
			found(s.Spec.NodeName, s.Spec.CIDR)
		}
	})
}

// watchAll watches list's kind from "now" with the initial state, and restarts when the API
// server ends the watch, until ctx ends.
func watchAll(ctx context.Context, c client.WithWatch, list client.ObjectList, each func(client.Object)) error {
	for ctx.Err() == nil {
		w, err := c.Watch(ctx, list)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				if o, ok := ev.Object.(client.Object); ok {
					each(o)
				}
			}
		}
		w.Stop()
	}
	return nil
}

// ipamSide runs one side: fresh control plane, controller started by start, a warm-up node
// allocated, then the clock: n nodes created by the workers, until all are allocated.
// With a shared control plane (api != nil) the controller is stopped when the side ends.
func ipamSide(ctx context.Context, e *Env, name string, api *apiServer, o IPAMOptions, start func(*apiServer) (allocated, *Proc, error)) (total, create time.Duration, err error) {
	if api == nil {
		e.Logf("IPAM %s: starting etcd + kube-apiserver", name)
		if api, err = startAPI(e, name); err != nil {
			return 0, 0, err
		}
		defer func() { _ = api.env.Stop() }() // free the memory before the other side runs
	}
	watcher, err := client.NewWithWatch(api.cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return 0, 0, err
	}
	creator, err := client.New(api.cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return 0, 0, err
	}
	alloc, ctl, err := start(api)
	if err != nil {
		return 0, 0, err
	}
	defer ctl.Stop(10 * time.Second)
	prefix := name + "-"

	var (
		mu      sync.Mutex
		cidrs   = map[string]string{} // node → CIDR
		done    = make(chan struct{})
		target  = o.Nodes + 1 // + the warm-up node
		warm    = make(chan struct{})
		closeMu sync.Once
		warmMu  sync.Once
		lastAt  atomic.Int64
	)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	go func() {
		werr <- alloc(wctx, watcher, func(node, cidr string) {
			mu.Lock()
			defer mu.Unlock()
			if _, seen := cidrs[node]; seen || !strings.HasPrefix(node, prefix) {
				return
			}
			cidrs[node] = cidr
			lastAt.Store(time.Now().UnixNano())
			if node == prefix+"warmup" {
				warmMu.Do(func() { close(warm) })
			}
			if len(cidrs) == target {
				closeMu.Do(func() { close(done) })
			}
		})
	}()

	if err := createNode(ctx, creator, prefix+"warmup", "192.168.0.1"); err != nil {
		return 0, 0, err
	}
	select {
	case <-warm:
	case err := <-werr:
		return 0, 0, fmt.Errorf("watch: %v", err)
	case <-time.After(3 * time.Minute):
		return 0, 0, errors.New("the warm-up node was not allocated within 3 minutes")
	}
	e.Logf("IPAM %s: controller allocates; creating %d nodes", name, o.Nodes)

	cpu0 := cpuSnapshot()
	t0 := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	var cerr atomic.Value
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > o.Nodes || ctx.Err() != nil {
					return
				}
				ip := fmt.Sprintf("192.168.%d.%d", 1+i/250, 1+i%250)
				if err := createNode(ctx, creator, fmt.Sprintf("%snode-%05d", prefix, i), ip); err != nil {
					cerr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	create = time.Since(t0)
	if err, _ := cerr.Load().(error); err != nil {
		return 0, 0, err
	}
	limit := 30 * time.Minute
	select {
	case <-done:
	case err := <-werr:
		return 0, 0, fmt.Errorf("watch: %v", err)
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(limit):
		mu.Lock()
		n := len(cidrs)
		mu.Unlock()
		return 0, 0, fmt.Errorf("%d of %d nodes allocated after %s", n-1, o.Nodes, limit)
	}
	total = time.Duration(lastAt.Load() - t0.UnixNano())
	e.Logf("IPAM %s, %d nodes: CPU until the last allocation: %s", name, o.Nodes,
		cpuSpent(cpu0, cpuSnapshot(), "kube-apiserver", "etcd", "manager", "kube-controller", "(bench: creators, watch)"))
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]string{}
	for node, c := range cidrs {
		if other, dup := seen[c]; dup {
			return 0, 0, fmt.Errorf("%s handed out twice: %s and %s", c, other, node)
		}
		seen[c] = node
	}
	if beforeStop != nil && name == "ovsmesh" {
		beforeStop()
	}
	return total, create, nil
}

// beforeStop, when set, runs after a side finished and before its controller stops.
var beforeStop func()

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// allocationSpan reports how many "allocated node subnet" lines the manager logged and the
// first and last of them (the log's own timestamps).
func allocationSpan(log string) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return err.Error()
	}
	var first, last string
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "allocated node subnet") {
			if n == 0 {
				first = l
			}
			last, n = l, n+1
		}
	}
	cut := func(s string) string {
		if len(s) > 160 {
			return s[:160]
		}
		return s
	}
	return fmt.Sprintf("%d allocations logged; first: %s\nlast: %s", n, cut(first), cut(last))
}

// waitIPAMIdle waits until the manager's IPAM reconciler has no pass running and has
// started none for a second (its last pass's fence read comes after the last NodeSubnet) and
// says how long that took, or that it did not settle.
func waitIPAMIdle(ctx context.Context, addr, token string, limit time.Duration) string {
	t0 := time.Now()
	prev := ""
	for time.Since(t0) < limit && ctx.Err() == nil {
		code, body, err := testenv.ScrapeMetrics(addr, token)
		if err == nil && code == http.StatusOK {
			var active, total string
			for _, l := range strings.Split(body, "\n") {
				if v, ok := strings.CutPrefix(l, `controller_runtime_active_workers{controller="nodesubnet-ipam"} `); ok {
					active = v
				}
				if strings.HasPrefix(l, `controller_runtime_reconcile_total{controller="nodesubnet-ipam"`) {
					total += l
				}
			}
			if active == "0" && total == prev {
				return fmt.Sprintf("IPAM idle %s after the last NodeSubnet", time.Since(t0).Round(100*time.Millisecond))
			}
			prev = total
		}
		time.Sleep(time.Second)
	}
	return fmt.Sprintf("IPAM still busy %s after the last NodeSubnet", limit)
}

// scrapeProfile reads the manager's metrics: client requests by verb/code and the IPAM
// reconciler's count and total time.
func scrapeProfile(addr, token string) string {
	code, body, err := testenv.ScrapeMetrics(addr, token)
	if err != nil {
		return err.Error()
	}
	if code != http.StatusOK {
		return fmt.Sprintf("metrics: HTTP %d: %.200s", code, body)
	}
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "rest_client_requests_total{") ||
			strings.HasPrefix(l, `controller_runtime_reconcile_total{controller="nodesubnet-ipam"`) ||
			strings.HasPrefix(l, `controller_runtime_reconcile_total{controller="networkcluster"`) ||
			strings.HasPrefix(l, `controller_runtime_reconcile_time_seconds_sum{controller="nodesubnet-ipam"`) ||
			strings.HasPrefix(l, `controller_runtime_reconcile_time_seconds_count{controller="nodesubnet-ipam"`) ||
			strings.HasPrefix(l, "rest_client_request_duration_seconds_sum") ||
			strings.HasPrefix(l, "rest_client_request_duration_seconds_count") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// createNode creates a Node and sets its InternalIP through the status subresource, as a
// kubelet does when it registers.
func createNode(ctx context.Context, c client.Client, name, ip string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	if err := c.Create(ctx, n); err != nil {
		return fmt.Errorf("creating node %s: %w", name, err)
	}
	// A merge patch without resourceVersion: the controller may already have written the node.
	orig := n.DeepCopy()
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
	if err := c.Status().Patch(ctx, n, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("node %s InternalIP: %w", name, err)
	}
	return nil
}
