package bench

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// The smoke tests run every benchmark at a small size so that none of them rots: each must
// complete, produce its figures, and every ratio must be a positive number. The targets are
// not asserted here (a size-10 run says nothing about them); `make bench` measures them.

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newEnv(t *testing.T) *Env {
	t.Helper()
	e, err := NewEnv(testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func smokeCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func checkFigures(t *testing.T, figs []Figure) {
	t.Helper()
	if len(figs) == 0 {
		t.Fatal("no figures")
	}
	for _, f := range figs {
		t.Log(f.Row())
		if math.IsNaN(f.Ratio) || math.IsInf(f.Ratio, 0) || f.Ratio <= 0 {
			t.Errorf("%s: ratio %v is not a positive number", f.Name, f.Ratio)
		}
	}
}

func TestSmokeOVSProgramming(t *testing.T) {
	e := newEnv(t)
	r, err := OVSProgramming(smokeCtx(t, time.Minute), e, OVSProgOptions{Peers: 10, Reps: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, r.Figures())
}

func TestSmokeCNILatency(t *testing.T) {
	e := newEnv(t)
	r, err := CNILatency(smokeCtx(t, 2*time.Minute), e, CNIOptions{Pods: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.OursAdd) != 10 || len(r.RefDel) != 10 {
		t.Fatalf("samples: %d ovsmesh ADD, %d reference DEL, want 10 each", len(r.OursAdd), len(r.RefDel))
	}
	checkFigures(t, r.Figures())
}

func TestSmokeIPAM(t *testing.T) {
	e := newEnv(t)
	r, err := IPAM(smokeCtx(t, 3*time.Minute), e, IPAMOptions{Nodes: 10, SharedAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, r.Figures())
}

func TestSmokeAgentRSS(t *testing.T) {
	e := newEnv(t)
	r, err := AgentRSS(smokeCtx(t, 2*time.Minute), e, AgentRSSOptions{Peers: 10, PeerStatus: true, Samples: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, r.Figures())
}

func TestSmokeDatapathLinks(t *testing.T) {
	e := newEnv(t)
	r, err := DatapathLinks(smokeCtx(t, 4*time.Minute), e, []string{"GRE"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 3 {
		t.Fatalf("%d link runs, want 3 (veth, internal, afxdp)", len(r.Runs))
	}
	for _, run := range r.Runs {
		if run.VswitchdCPU <= 0 {
			t.Errorf("link %s: ovs-vswitchd CPU %v during an iperf3 run, want > 0", run.Link, run.VswitchdCPU)
		}
	}
	checkFigures(t, r.Figures())
}

// TestSmokeCluster runs the data-path and convergence benchmarks in one small netns
// cluster (starting one costs most of the time): iperf3 for a second each, then one join.
func TestSmokeCluster(t *testing.T) {
	e := newEnv(t)
	ctx := smokeCtx(t, 4*time.Minute)
	c, err := StartCluster(ctx, e, ClusterOptions{Nodes: 2, Tunnel: "GRE", Protocol: "RSTP", FastTimers: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Datapath(ctx, e, c, DatapathOptions{Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Runs) != 1 {
		t.Fatalf("%d data path runs, want 1", len(d.Runs))
	}
	checkFigures(t, d.Figures())
	// Two joins with a leave between: the second node gets the first one's subnet (the
	// rejoin benchmark's path).
	r, err := Converge(ctx, e, c, "RSTP", "fast", ConvergeOptions{Joins: 2, Leave: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tunnels) != 2 || len(r.Ping) != 2 {
		t.Fatalf("samples: %d tunnel, %d ping, want 2 each", len(r.Tunnels), len(r.Ping))
	}
	checkFigures(t, r.Figures())
}

func TestSmokePodStart(t *testing.T) {
	e := newEnv(t)
	r, err := PodStart(smokeCtx(t, 5*time.Minute), e, PodStartOptions{Nodes: 2, Pods: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Ours) != 3 || len(r.Ref) != 3 || r.OursNetReady <= 0 || r.RefNetReady <= 0 {
		t.Fatalf("samples: %d ovsmesh, %d reference, network ready %s / %s", len(r.Ours), len(r.Ref), r.OursNetReady, r.RefNetReady)
	}
	checkFigures(t, r.Figures())
}

// TestSmokeMesh runs the loop-prevention comparison for SplitHorizon at a small size: a few
// pings, 1 s iperf3 runs, a short kill window. SplitHorizon's figures are zeros by design
// (nothing through the bystander, nothing lost), so they are checked as such.
func TestSmokeMesh(t *testing.T) {
	e := newEnv(t)
	ctx := smokeCtx(t, 4*time.Minute)
	c, err := StartCluster(ctx, e, ClusterOptions{Nodes: 4, Tunnel: "GRE", Protocol: "SplitHorizon"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Mesh(ctx, e, c, "SplitHorizon", MeshOptions{Pings: 20, Iperf: time.Second, KillWindow: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	figs := r.Figures()
	for _, f := range figs {
		t.Log(f.Row())
	}
	if len(figs) != 3 || r.Direct <= 0 || r.OneHop <= 0 || r.KillSent < 50 {
		t.Fatalf("result %+v, %d figures", r, len(figs))
	}
	if r.Transit > 10 || r.KillLost != 0 {
		t.Errorf("split horizon: %d packets through the bystander, %d lost while it died; want ~0 and 0", r.Transit, r.KillLost)
	}
}
