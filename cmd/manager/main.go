// Command manager is the ovsmesh operator: it allocates NodeSubnets, runs the agent DaemonSet
// and aggregates status into the NetworkCluster. All logic lives in controllers/.
package main

import (
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/controllers"
	"github.com/ovsmesh/ovsmesh/internal/logging"
	"github.com/ovsmesh/ovsmesh/internal/metricsauth"
)

func main() {
	var (
		metricsAddr, probeAddr string
		leaderElect            bool
		agentMetricsPort       int
		logOpts                logging.Options
		opts                   controllers.Options
	)
	defaultNS := os.Getenv("POD_NAMESPACE")
	if defaultNS == "" {
		defaultNS = controllers.DefaultNamespace
	}
	flag.StringVar(&opts.Namespace, "agent-namespace", defaultNS, "namespace of the agent DaemonSet, its ServiceAccount and the subnet blocks (default $POD_NAMESPACE); the operator's RBAC Role grants these in its own namespace only")
	flag.DurationVar(&opts.CleanupTimeout, "cleanup-timeout", controllers.DefaultCleanupTimeout, "how long uninstall waits for every agent to report CleanedUp before it proceeds")
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "address the metrics endpoint binds to: HTTPS, authenticated and authorized by the API server (0 disables it)")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address the health and readiness probes bind to")
	flag.IntVar(&agentMetricsPort, "agent-metrics-port", controllers.DefaultAgentMetricsPort, "port of the agents' metrics endpoint (HTTPS) on every node; 0 turns it off (the agents use the node's network: a port a node already uses keeps its agent from starting)")
	flag.BoolVar(&leaderElect, "leader-elect", false, "enable leader election so only one replica reconciles at a time")
	logOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	opts.AgentMetricsPort = agentMetricsPort
	if agentMetricsPort == 0 {
		opts.AgentMetricsPort = -1 // off
	}

	log, err := logging.New(logOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(log)

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsauth.Options(metricsAddr, ""),
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "ovsmesh-operator.network.ovsmesh.io",
		Cache:                  controllers.CacheOptions(opts.Namespace),
	})
	if err != nil {
		log.Error(err, "unable to create manager")
		os.Exit(1)
	}
	if err := setupControllers(mgr, opts); err != nil {
		log.Error(err, "unable to set up controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up ready check")
		os.Exit(1)
	}
	log.Info("starting operator")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager exited with an error")
		os.Exit(1)
	}
}
