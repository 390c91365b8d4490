package controllers

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestOperatorMetrics reads the operator's series (its registry, as the metrics endpoint
// serves it) after known changes: two nodes allocated, then their agents reporting.
func TestOperatorMetrics(t *testing.T) {
	before := testutil.ToFloat64(allocations.WithLabelValues("allocated"))
	beforeLatency := histogramCount(t)
	e := newOpEnv(t)
	e.startManager(Options{})
	e.createCluster(nil)
	a := e.mustNode(e.nodeName(0), "192.168.6.10", nil)
	b := e.mustNode(e.nodeName(1), "192.168.6.11", nil)
	e.waitSubnets(30*time.Second, a.Name, b.Name)
	e.eventually(10*time.Second, "two allocations counted", func() error {
		if got := testutil.ToFloat64(allocations.WithLabelValues("allocated")) - before; got != 2 {
			return fmt.Errorf("allocated +%v", got)
		}
		if got := histogramCount(t) - beforeLatency; got != 2 {
			return fmt.Errorf("latency observations +%v", got)
		}
		return nil
	})
	e.eventually(10*time.Second, "both nodes not reported yet", func() error {
		return gauge(nodesByState.WithLabelValues("not_reported"), 2)
	})
	e.setAgentStatus(a.Name, func(st *v1alpha1.NodeSubnetStatus) {
		st.ObservedGeneration = e.cluster().Generation
		meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, "True", "Applied"))
	})
	e.setAgentStatus(b.Name, func(st *v1alpha1.NodeSubnetStatus) {
		meta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, "False", "HostConflict"))
	})
	e.eventually(10*time.Second, "one ready, one HostConflict", func() error {
		for state, want := range map[string]float64{"ready": 1, "HostConflict": 1, "not_reported": 0, "no_subnet": 0} {
			if err := gauge(nodesByState.WithLabelValues(state), want); err != nil {
				return fmt.Errorf("%s: %w", state, err)
			}
		}
		return nil
	})
	if got := testutil.ToFloat64(subnetsFree); got != 254 {
		t.Errorf("subnets free %v, want 254 of 256", got)
	}
}

func gauge(g interface{ Write(*dto.Metric) error }, want float64) error {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return err
	}
	if got := m.GetGauge().GetValue(); got != want {
		return fmt.Errorf("%v, want %v", got, want)
	}
	return nil
}

func histogramCount(t *testing.T) float64 {
	t.Helper()
	var m dto.Metric
	if err := allocationSeconds.Write(&m); err != nil {
		t.Fatal(err)
	}
	return float64(m.GetHistogram().GetSampleCount())
}
