package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
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
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		t.Helper()
		if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token for %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	allowed, denied := token("prometheus"), token("nosy")
	if err := c.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: "default"}}}); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the agent's endpoint
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startAgentWith(t, env, n, "n1", n.Sock, nil, func(o *ManagerOptions) { o.MetricsAddr = addr })
	waitStatus(t, c, "n1", "Ready", isReady(nc.Generation))

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the agent's self-signed certificate
	scrape := func(tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
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
