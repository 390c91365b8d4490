package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// TestMetricsScrape scrapes a running agent's metrics endpoint as Prometheus would: HTTPS,
// a ServiceAccount token, RBAC for /metrics (the API server authenticates and authorizes
// every request). It reads the agent's series, checks their values, changes the mesh and
// reads them again; and it checks that a caller without a token, or without the right, gets
// nothing.
func TestMetricsScrape(t *testing.T) {
	env, n, nc := meshEnv(t, "ovsmt-mx-", testCluster())
	c := env.Client
	ctx := context.Background()

	// Two scrapers: one bound to a ClusterRole that may get /metrics, one not.
	token := func(sa string, allowed bool) string {
		t.Helper()
		tok, err := testenv.MetricsToken(ctx, env.Config, sa, allowed)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	allowed, denied := token("prometheus", true), token("nosy", false)

	l, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the agent's endpoint
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startAgentWith(t, env, n, "n1", n.Sock, nil, func(o *ManagerOptions) { o.MetricsAddr = addr })
	waitStatus(t, c, "n1", "Ready", isReady(nc.Generation))

	scrape := func(tok string) (int, string) {
		t.Helper()
		code, body, err := testenv.ScrapeMetrics(addr, tok)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		return code, body
	}
	value := func(body, series string) (float64, bool) {
		for _, line := range strings.Split(body, "\n") {
			if rest, ok := strings.CutPrefix(line, series+" "); ok {
				v, err := strconv.ParseFloat(rest, 64)
				return v, err == nil
			}
		}
		return 0, false
	}
	expect := func(body string, want map[string]float64) error {
		for series, w := range want {
			if v, ok := value(body, series); !ok || v != w {
				return fmt.Errorf("%s = %v (present %v), want %v", series, v, ok, w)
			}
		}
		return nil
	}

	code, body := scrape(allowed)
	if code != http.StatusOK {
		t.Fatalf("scrape with the reader's token: HTTP %d: %s", code, body)
	}
	if err := expect(body, map[string]float64{
		`ovsmesh_agent_ready`:                            1,
		`ovsmesh_agent_ready_reason{reason="Applied"}`:   1,
		`ovsmesh_agent_tunnels{state="desired"}`:         1,
		`ovsmesh_agent_tunnels{state="live"}`:            1,
		`ovsmesh_agent_tunnels{state="bfd_down"}`:        1, // n2 has no node behind it
		`ovsmesh_agent_drift_repairs_total{kind="host"}`: 0,
	}); err != nil {
		t.Error(err)
	}
	if v, ok := value(body, `ovsmesh_agent_cni_config_writes_total`); !ok || v < 1 {
		t.Errorf("cni config writes %v (%v), want ≥ 1", v, ok)
	}
	if v, ok := value(body, `ovsmesh_agent_ovsdb_transaction_duration_seconds_count{result="ok"}`); !ok || v < 1 {
		t.Errorf("OVSDB transactions observed: %v (%v), want ≥ 1", v, ok)
	}
	series := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "ovsmesh_agent_") {
			series++
		}
	}
	t.Logf("%d ovsmesh_agent_ series with 1 peer", series)

	// A peer joins: the tunnel gauges follow; the series count does not grow with peers.
	n3 := threeNodes()[0]
	if err := c.Create(ctx, &n3); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 30*time.Second, "tunnels desired 2 in the metrics", func() bool {
		_, body = scrape(allowed)
		return expect(body, map[string]float64{`ovsmesh_agent_tunnels{state="desired"}`: 2, `ovsmesh_agent_tunnels{state="live"}`: 2}) == nil
	})
	after := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "ovsmesh_agent_") {
			after++
		}
	}
	if after != series {
		t.Errorf("%d ovsmesh_agent_ series with 2 peers, %d with 1: a series per peer?", after, series)
	}

	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("scrape without a token: HTTP %d, want 401", code)
	}
	if code, _ := scrape(denied); code != http.StatusForbidden {
		t.Errorf("scrape with a token lacking RBAC for /metrics: HTTP %d, want 403", code)
	}
}
