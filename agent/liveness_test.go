package agent

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// ovsLossBound is how soon the agent must report OVSUnavailable after ovsdb-server hangs
// or dies (the target).
const ovsLossBound = 5 * time.Second

// TestOVSUnavailableWithinSeconds: an agent that is connected and Ready reports
// OVSUnavailable within ovsLossBound when ovsdb-server hangs (SIGSTOP: the socket stays
// open and the cache looks current, the nasty case) and when it is killed, and Ready again
// once the server is back, without recreating a port, an interface or a link.
func TestOVSUnavailableWithinSeconds(t *testing.T) {
	env, n, nc := meshEnv(t, "ovsmt-lv-", testCluster())
	c := env.Client
	startAgent(t, env, n, "n1")
	waitStatus(t, c, "n1", "Ready", isReady(nc.Generation))
	before := dataPath(n)

	for _, outage := range []struct {
		name        string
		stop, start func()
	}{
		{"hung (SIGSTOP)", n.PauseDB, n.ResumeDB},
		{"killed", n.KillDB, n.StartDB},
	} {
		outage.stop()
		took := waitStatusWithin(t, c, "n1", "OVSUnavailable ("+outage.name+")", ovsLossBound, func(ns *v1alpha1.NodeSubnet) bool {
			r := ready(ns)
			return r != nil && r.Status == metav1.ConditionFalse && r.Reason == v1alpha1.ReasonOVSUnavailable
		})
		t.Logf("ovsdb-server %s: OVSUnavailable after %v", outage.name, took.Round(10*time.Millisecond))
		outage.start()
		waitStatus(t, c, "n1", "Ready after the "+outage.name+" server came back", isReady(nc.Generation))
		if after := dataPath(n); !maps.Equal(before, after) {
			t.Errorf("the data path changed across the %s outage:\nbefore %v\nafter  %v", outage.name, before, after)
		}
	}
}

// dataPath identifies what a reapply must not recreate: OVS port and interface rows (by
// uuid) and the namespace's links (by ifindex).
func dataPath(n *nodetest.Node) map[string]string {
	m := map[string]string{}
	for _, table := range []string{"Port", "Interface"} {
		for _, row := range sortedLines(n.Vsctl("--format=csv", "--no-headings", "--columns=name,_uuid", "list", table)) {
			m[table+" "+row] = ""
		}
	}
	for name, l := range n.Links() {
		m["link "+name] = strconv.Itoa(l.Index)
	}
	return m
}

// waitStatusWithin is waitStatus with a bound that is the point of the check; it returns
// how long it took.
func waitStatusWithin(t *testing.T, c client.Client, name, what string, d time.Duration, ok func(*v1alpha1.NodeSubnet) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var ns v1alpha1.NodeSubnet
	for {
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &ns); err == nil && ok(&ns) {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("no %s within %v; status: %+v", what, d, ns.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
