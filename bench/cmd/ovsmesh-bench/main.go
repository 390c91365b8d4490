// Command ovsmesh-bench runs ovsmesh's benchmarks at full size and prints every figure as a
// ratio against its reference, measured in the same run (see package bench). `make bench`
// runs it; BENCHMARKS.md records its output.
//
//	ovsmesh-bench [-only ovs,cni,ipam,rss,converge,mesh,rejoin,datapath,podstart] [-json results.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovsmesh/ovsmesh/bench"
)

type suite struct {
	name string
	run  func(ctx context.Context, e *bench.Env) ([]bench.Figure, error)
}

func main() {
	only := flag.String("only", "", "comma-separated benchmarks to run (default all): "+names())
	jsonOut := flag.String("json", "", "also write the figures and the machine as JSON to this file")
	flag.Parse()
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := bench.ThisMachine()
	fmt.Printf("machine: nproc=%d cpu=%q kernel=%s date=%s loadavg=%s\n\n", m.NProc, m.CPU, m.Kernel, m.Date, m.Load)
	type result struct {
		Suite   string         `json:"suite"`
		Figures []bench.Figure `json:"figures"`
		Error   string         `json:"error,omitempty"`
		Took    string         `json:"took"`
	}
	var results []result
	failed := false
	for _, s := range suites {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "=== %s\n", s.name)
		t0 := time.Now()
		e, err := bench.NewEnv(os.Stderr)
		var figs []bench.Figure
		if err == nil {
			figs, err = s.run(ctx, e)
			e.Close()
		}
		if err != nil {
			figs = measured(figs)
		}
		r := result{Suite: s.name, Figures: figs, Took: time.Since(t0).Round(time.Second).String()}
		if err != nil {
			r.Error = err.Error()
			failed = true
			fmt.Fprintf(os.Stderr, "=== %s FAILED: %v\n", s.name, err)
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Println("| figure | ovsmesh | reference | ratio | target | |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range results {
		for _, f := range r.Figures {
			fmt.Println(f.Row())
		}
		if r.Error != "" {
			fmt.Printf("| %s | error: %s | | | | ❌ |\n", r.Suite, r.Error)
		}
	}
	for _, r := range results {
		for _, f := range r.Figures {
			if f.Note != "" {
				fmt.Printf("\n- %s: %s", f.Name, f.Note)
			}
		}
	}
	fmt.Println()
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(struct {
			Machine bench.Machine `json:"machine"`
			Results []result      `json:"results"`
		}{m, results}, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// measured drops the figures a failed suite computed from zero values (a failure part-way
// keeps the figures of the parts that completed).
func measured(figs []bench.Figure) []bench.Figure {
	var out []bench.Figure
	for _, f := range figs {
		if f.Ratio > 0 && !math.IsInf(f.Ratio, 0) {
			out = append(out, f)
		}
	}
	return out
}

func names() string {
	var n []string
	for _, s := range suites {
		n = append(n, s.name)
	}
	return strings.Join(n, ",")
}

var suites = []suite{
	{"ovs", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		r, err := bench.OVSProgramming(ctx, e, bench.OVSProgOptions{Peers: 1000, Reps: 5})
		return r.Figures(), err
	}},
	{"ipam", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		var figs []bench.Figure
		for _, f := range strings.Split(*ipamNodes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return figs, fmt.Errorf("-ipam-nodes: %w", err)
			}
			r, err := bench.IPAM(ctx, e, bench.IPAMOptions{Nodes: n, AlsoUnthrottledKCM: true, NoDefaultKCM: !*ipamDefaultKCM, OursFirst: *ipamOursFirst, Profile: true})
			if err != nil {
				return figs, err
			}
			figs = append(figs, r.Figures()...)
		}
		return figs, nil
	}},
	{"rss", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		r, err := bench.AgentRSS(ctx, e, bench.AgentRSSOptions{Peers: 1000})
		if err != nil {
			return nil, err
		}
		figs := r.Figures()
		r, err = bench.AgentRSS(ctx, e, bench.AgentRSSOptions{Peers: 1000, PeerStatus: true})
		return append(figs, r.Figures()...), err
	}},
	{"converge", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		return convergeSettings(ctx, []convergeSetting{
			{"SplitHorizon", false, *joins, false},
			{"RSTP", false, *joins, false}, {"RSTP", true, *joins, false},
			{"STP", false, *joins, false}, {"STP", true, *joins, false},
		})
	}},
	{"mesh", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		// One 4-node cluster per mode (fast timers), side by side in this run.
		var figs []bench.Figure
		var errs []error
		for _, p := range []string{"STP", "RSTP", "SplitHorizon"} {
			me, err := bench.NewEnv(os.Stderr)
			if err != nil {
				return figs, err
			}
			o := bench.MeshOptions{Pings: 200, Iperf: time.Duration(*iperfSecs) * time.Second, KillWindow: 25 * time.Second}
			if p == "STP" {
				o.SyntheticPeers = 300
			}
			c, err := bench.StartCluster(ctx, me, bench.ClusterOptions{Nodes: 4, Tunnel: "GRE", Protocol: p, FastTimers: true})
			if err == nil {
				var r bench.MeshResult
				r, err = bench.Mesh(ctx, me, c, p, o)
				figs = append(figs, r.Figures()...)
			}
			me.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
			}
		}
		return figs, errors.Join(errs...)
	}},
	{"rejoin", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		// A node joining into the subnet a node just left: its pod gets the address the
		// departed pod had, which every other node still has a neighbour entry for.
		return convergeSettings(ctx, []convergeSetting{{"RSTP", true, *rejoins, true}})
	}},
	{"datapath", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		c, err := bench.StartCluster(ctx, e, bench.ClusterOptions{Nodes: 2, Tunnel: "GRE", Protocol: "RSTP", FastTimers: true})
		if err != nil {
			return nil, err
		}
		r, err := bench.Datapath(ctx, e, c, bench.DatapathOptions{Duration: time.Duration(*iperfSecs) * time.Second, Knobs: true})
		return r.Figures(), err
	}},
	{"links", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		// The kbr0–obr0 link alternatives, on clusters of their own.
		r, err := bench.DatapathLinks(ctx, e, []string{"GRE", "VXLAN"}, time.Duration(*iperfSecs)*time.Second)
		return r.Figures(), err
	}},
	{"podstart", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		r, err := bench.PodStart(ctx, e, bench.PodStartOptions{Nodes: 3, Pods: *startPods})
		return r.Figures(), err
	}},
	{"cni", func(ctx context.Context, e *bench.Env) ([]bench.Figure, error) {
		r, err := bench.CNILatency(ctx, e, bench.CNIOptions{Pods: *cniPods})
		return r.Figures(), err
	}},
}

type convergeSetting struct {
	proto string
	fast  bool
	joins int
	leave bool
}

// convergeSettings runs each setting on a cluster of its own (a clean spanning tree each);
// a failed setting does not stop the others, and every failure is reported at the end.
func convergeSettings(ctx context.Context, settings []convergeSetting) ([]bench.Figure, error) {
	var figs []bench.Figure
	var errs []error
	for _, s := range settings {
		timers := "default"
		if s.fast {
			timers = "fast"
		}
		ce, err := bench.NewEnv(os.Stderr)
		if err != nil {
			return figs, err
		}
		c, err := bench.StartCluster(ctx, ce, bench.ClusterOptions{Nodes: *clusterSz, Tunnel: "GRE", Protocol: s.proto, FastTimers: s.fast})
		if err == nil {
			var r bench.ConvergeResult
			r, err = bench.Converge(ctx, ce, c, s.proto, timers, bench.ConvergeOptions{Joins: s.joins, Leave: s.leave})
			figs = append(figs, r.Figures()...)
		}
		ce.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s, %s timers (leave %v): %w", s.proto, timers, s.leave, err))
		}
	}
	return measured(figs), errors.Join(errs...)
}

var (
	ipamNodes      = flag.String("ipam-nodes", "1000,5000", "comma-separated Node counts of the IPAM benchmark")
	ipamDefaultKCM = flag.Bool("ipam-default-kcm", true, "also run the IPAM benchmark's kube-controller-manager side with its default client settings (~250 s at 5,000 nodes)")
	ipamOursFirst  = flag.Bool("ipam-ours-first", false, "run the IPAM benchmark's ovsmesh side before the kube-controller-manager sides (the order can matter on a shared machine)")
)

var (
	joins     = flag.Int("joins", 10, "node joins measured per protocol in the convergence benchmark")
	rejoins   = flag.Int("rejoins", 5, "leave-then-join rounds in the rejoin benchmark")
	iperfSecs = flag.Int("iperf-seconds", 10, "duration of each iperf3 run")
	clusterSz = flag.Int("cluster-nodes", 3, "nodes of the convergence cluster before each join")
)

var cniPods = flag.Int("cni-pods", 300, "pods per side in the CNI latency benchmark")

var startPods = flag.Int("start-pods", 30, "pods per side in the real-node pod start benchmark")
