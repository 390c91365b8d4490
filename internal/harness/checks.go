package harness

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// PairResult is one ordered pod pair's connectivity.
type PairResult struct {
	From, To *Pod
	OK       bool
	Attempts int
}

// PingAll pings every ordered pair of pods (3 echoes each), retrying a pair until it gets all
// three back or the deadline passes: right after a topology change spanning tree may still be
// learning. Pairs run in parallel per source.
func PingAll(ctx context.Context, pods []*Pod, deadline time.Duration) []PairResult {
	var (
		mu  sync.Mutex
		res []PairResult
		wg  sync.WaitGroup
	)
	end := time.Now().Add(deadline)
	for _, from := range pods {
		wg.Add(1)
		go func(from *Pod) {
			defer wg.Done()
			for _, to := range pods {
				if from == to {
					continue
				}
				r := PairResult{From: from, To: to}
				for {
					r.Attempts++
					// -W 5: every echo must come back, but it may take its time: on a
					// loaded machine the userspace datapath's first upcalls (and ARP)
					// can hold a reply past ping's default wait of 1 s. Reachability is
					// what is asserted, not latency.
					got, _ := from.Ping(ctx, to.IP, 3, "-W", "5")
					if got == 3 {
						r.OK = true
						break
					}
					if time.Now().After(end) || ctx.Err() != nil {
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				mu.Lock()
				res = append(res, r)
				mu.Unlock()
			}
		}(from)
	}
	wg.Wait()
	return res
}

// Failed returns the pairs that did not ping.
func Failed(rs []PairResult) []string {
	var out []string
	for _, r := range rs {
		if !r.OK {
			out = append(out, fmt.Sprintf("%s(%s) -> %s(%s)", r.From.Name, r.From.IP, r.To.Name, r.To.IP))
		}
	}
	return out
}

// Kubectl runs kubectl against the cluster with the admin kubeconfig.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlBin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
