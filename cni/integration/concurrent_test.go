package integration

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// TestConcurrentAdds: 20 pods attached at once (as a runtime may do for different
// containers) get 20 distinct addresses and 20 veths; 20 concurrent DELs clean all up.
func TestConcurrentAdds(t *testing.T) {
	const pods = 20
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	ps := make([]*pod, pods)
	for i := range ps {
		ps[i] = n.newPod(t)
	}

	ips := make([]string, pods)
	errs := make([]error, pods)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			r, err := n.add(t, l, p.rt())
			if err == nil && len(r.IPs) == 1 {
				ips[i] = r.IPs[0].Address.IP.String()
			} else if err == nil {
				err = fmt.Errorf("%d addresses in the result", len(r.IPs))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := map[string]string{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("ADD %s: %v", ps[i].id, err)
			continue
		}
		if other, dup := seen[ips[i]]; dup {
			t.Errorf("%s and %s both got %s", other, ps[i].id, ips[i])
		}
		seen[ips[i]] = ps[i].id
	}
	if len(seen) != pods {
		t.Errorf("%d distinct addresses, want %d", len(seen), pods)
	}
	if got := n.reservations(l.Name); len(got) != pods {
		t.Errorf("%d reservations, want %d", len(got), pods)
	}
	if v := n.vethNames(); len(v) != pods {
		t.Errorf("%d veths on the node, want %d", len(v), pods)
	}

	for i, p := range ps {
		wg.Go(func() { errs[i] = n.del(t, l, p.rt()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("DEL %s: %v", ps[i].id, err)
		}
	}
	if got := n.reservations(l.Name); len(got) != 0 {
		t.Errorf("reservations left after DEL: %v", got)
	}
	if v := n.vethNames(); len(v) != 0 {
		t.Errorf("veths left after DEL: %v", v)
	}
}

// TestAddLatency is the quick local measurement of ADD (libcni -> ovsmesh -> host-local
// refuses 1.1.0, VERSION, ADD at 1.0.0 -> netlink), sequential, at spec 1.1.0: the slow path. It logs percentiles; the
// side-by-side benchmark lives elsewhere.
func TestAddLatency(t *testing.T) {
	const rounds = 40
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	var took []time.Duration
	for range rounds {
		p := n.newPod(t)
		start := time.Now()
		n.mustAdd(t, l, p)
		took = append(took, time.Since(start))
		if err := n.del(t, l, p.rt()); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	p50, p90 := took[len(took)/2], took[len(took)*9/10]
	if p50 <= 0 || p90 < p50 {
		t.Fatalf("nonsense timings: %v", took)
	}
	t.Logf("ADD latency over %d sequential ADDs: p50 %v, p90 %v, max %v", rounds, p50.Round(time.Microsecond), p90.Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
}
