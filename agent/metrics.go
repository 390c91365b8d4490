package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// The agent's metrics, on controller-runtime's registry (served by the manager's metrics
// server, see cmd/ovsmesh-agent). Every series is per node and bounded: no label takes a
// peer's name, so a node exports the same number of series in a 3-node and a 5,000-node
// cluster (peers that need attention are in the NodeSubnet's unhealthyPeers and its
// Events). Reconcile counts, errors and durations are controller-runtime's own
// (controller_runtime_reconcile_*{controller="ovsmesh-agent"}).
var (
	// tunnels{state}: the node's TunnelSummary, one series per field.
	tunnelsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ovsmesh_agent_tunnels",
		Help: "Tunnels of this node by state: desired, live, forwarding, blocked (by spanning tree, on purpose), converging, missing, skipped (peer address unusable), bfd_up, bfd_down.",
	}, []string{"state"})
	readyGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ovsmesh_agent_ready",
		Help: "1 when this node's NodeSubnet reports Ready=True, else 0.",
	})
	readyReasonGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ovsmesh_agent_ready_reason",
		Help: "1 for the reason of this node's Ready condition (Applied, HostConflict, OVSUnavailable, ...); only the current reason has a series.",
	}, []string{"reason"})
	applySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ovsmesh_agent_apply_duration_seconds",
		Help:    "Time one pass took to bring the host, OVS and the CNI config in line (successful passes).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5 ms … 131 s
	})
	ovsdbSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ovsmesh_agent_ovsdb_transaction_duration_seconds",
		Help:    "Round trip of OVSDB transactions to ovsdb-server, by result (ok or error).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 0.1 ms … 26 s
	}, []string{"result"})
	ovsdbFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ovsmesh_agent_ovsdb_transaction_failures_total",
		Help: "OVSDB transactions that failed (refused by ovsdb-server, or the connection went).",
	})
	driftRepairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ovsmesh_agent_drift_repairs_total",
		Help: "Passes that put back something that changed under the agent, by kind: host (links, addresses, route, sysctls, nftables) or ovs (bridge, ports).",
	}, []string{"kind"})
	cniWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ovsmesh_agent_cni_config_writes_total",
		Help: "Times the agent wrote the node's CNI conflist (it writes only when the content changes).",
	})
)

func init() {
	metrics.Registry.MustRegister(tunnelsGauge, readyGauge, readyReasonGauge, applySeconds, ovsdbSeconds, ovsdbFailures, driftRepairs, cniWrites)
	for _, k := range []string{"host", "ovs"} {
		driftRepairs.WithLabelValues(k) // present at 0, so rate() works from the start
	}
}

// ObserveOVSDBTransaction is the ovs.Options.ObserveTransaction of the agent's client.
func ObserveOVSDBTransaction(_ int, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		ovsdbFailures.Inc()
	}
	ovsdbSeconds.WithLabelValues(result).Observe(took.Seconds())
}

// observePass updates the metrics from one pass: the status it writes, what it changed,
// and the events it found (drift).
func observePass(st v1alpha1.NodeSubnetStatus, res Result, applied bool, evs []agentEvent) {
	t := st.Tunnels
	for state, v := range map[string]int32{"desired": t.Desired, "live": t.Live, "forwarding": t.Forwarding, "blocked": t.Blocked,
		"converging": t.Converging, "missing": t.Missing, "skipped": t.Skipped, "bfd_up": t.Up, "bfd_down": t.Down} {
		tunnelsGauge.WithLabelValues(state).Set(float64(v))
	}
	readyGauge.Set(0)
	readyReasonGauge.Reset()
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil {
		if c.Status == metav1.ConditionTrue {
			readyGauge.Set(1)
		}
		readyReasonGauge.WithLabelValues(c.Reason).Set(1)
	}
	if applied {
		applySeconds.Observe(res.Duration.Seconds())
	}
	if res.CNIWritten {
		cniWrites.Inc()
	}
	for _, e := range evs {
		if e.Reason != EventDriftRepaired {
			continue
		}
		if len(res.HostChanges) > 0 {
			driftRepairs.WithLabelValues("host").Inc()
		} else {
			driftRepairs.WithLabelValues("ovs").Inc()
		}
	}
}
