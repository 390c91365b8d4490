// Command ovsmesh-agent is the ovsmesh node agent. It runs on every node (a DaemonSet pod
// with hostNetwork) and keeps the node's data path — kbr0, obr0, the veth between them, the
// GRE/VXLAN mesh, the cluster route, masquerade and the CNI config — equal to what the
// NetworkCluster and the NodeSubnets say. All logic lives in package agent.
//
//	ovsmesh-agent [run] [flags]       reconcile until terminated (the default)
//	ovsmesh-agent cleanup [flags]     remove everything ovsmesh put on this node, then exit
//	ovsmesh-agent install-cni [flags] copy the image's CNI plugins to the node (init container)
//
// The agent never tears anything down when it exits: a restart (or an upgrade) adopts what
// is there and changes nothing that is right, so pods keep their traffic.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/ovsmesh/ovsmesh/agent"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	cniconfig "github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/hostnet"
	"github.com/ovsmesh/ovsmesh/internal/logging"
	"github.com/ovsmesh/ovsmesh/ovs"
)

type options struct {
	nodeName          string
	namespace         string
	ovsdbSocket       string
	vswitchdCtl       string
	cniConfDir        string
	ipamDataDir       string
	underlayInterface string
	resync            time.Duration
	metricsAddr       string
	probeAddr         string
	ovsBridge         string
	linuxBridge       string
	cniBinDir         string
	cniSourceDir      string
	log               logging.Options
}

func main() {
	sub, args := "run", os.Args[1:]
	if len(args) > 0 && (args[0] == "run" || args[0] == "cleanup" || args[0] == "install-cni" || args[0] == "trace") {
		sub, args = args[0], args[1:]
	}
	var o options
	// --kubeconfig is registered on flag.CommandLine by controller-runtime.
	fs := flag.CommandLine
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [run|cleanup|install-cni|trace] [flags]\n", os.Args[0])
		fs.PrintDefaults()
	}
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "name of this node (default $NODE_NAME)")
	fs.StringVar(&o.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace of the agent's heartbeat Lease: the operator's, where the DaemonSet runs (default $POD_NAMESPACE; empty: no heartbeat)")
	fs.StringVar(&o.ovsdbSocket, "ovsdb-socket", ovs.DefaultSocket, "ovsdb-server unix socket")
	fs.StringVar(&o.vswitchdCtl, "vswitchd-ctl", "", "ovs-vswitchd unixctl socket for its liveness probe (default: found from ovs-vswitchd.pid beside the ovsdb socket, as ovs-appctl does)")
	fs.StringVar(&o.cniConfDir, "cni-conf-dir", cniconfig.DefaultConfDir, "directory the CNI config is written to")
	fs.StringVar(&o.ipamDataDir, "cni-ipam-data-dir", "", "host-local IPAM dataDir written into the CNI config (default: host-local's own, /var/lib/cni/networks)")
	fs.StringVar(&o.underlayInterface, "underlay-interface", "", "interface whose MTU sizes the pod MTU (default: the one holding the node IP of this node's NodeSubnet)")
	fs.DurationVar(&o.resync, "resync-period", 5*time.Minute, "re-check the host after a successful pass this often (host changes have no watch)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "metrics endpoint address (0 disables it; the agent uses the node's network)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", "0", "health probe address (0 disables it)")
	fs.StringVar(&o.ovsBridge, "ovs-bridge", v1alpha1.DefaultOVSBridge, "cleanup: OVS bridge name when the NetworkCluster cannot be read; trace: the OVS bridge")
	fs.StringVar(&o.linuxBridge, "linux-bridge", v1alpha1.DefaultLinuxBridge, "cleanup: Linux bridge name when the NetworkCluster cannot be read; trace: the Linux bridge")
	fs.StringVar(&o.cniBinDir, "cni-bin-dir", "/opt/cni/bin", "install-cni: directory the CNI plugins are copied to; run, cleanup: where uninstall removes the plugins install-cni recorded")
	fs.StringVar(&o.cniSourceDir, "cni-source-dir", defaultCNISourceDir, "install-cni: directory holding the CNI plugins shipped with the agent")
	o.log.BindFlags(fs)
	var tf traceFlags
	tf.bind(fs)
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	log, err := logging.New(o.log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(log)
	if sub == "trace" {
		if err := trace(os.Stdout, o, tf); err != nil {
			fmt.Fprintln(os.Stderr, "trace:", err)
			os.Exit(1)
		}
		return
	}
	if sub == "install-cni" {
		installed, err := installCNI(o.cniSourceDir, o.cniBinDir)
		if err != nil {
			log.Error(err, "install-cni failed")
			os.Exit(1)
		}
		log.Info("CNI plugins installed", "dir", o.cniBinDir, "plugins", installed)
		return
	}
	if o.nodeName == "" {
		log.Error(errors.New("--node-name or NODE_NAME is required"), "cannot start")
		os.Exit(2)
	}
	log = log.WithValues("node", o.nodeName)

	switch sub {
	case "cleanup":
		err = cleanup(log, o)
	default:
		err = run(log, o)
	}
	if err != nil {
		log.Error(err, sub+" failed")
		os.Exit(1)
	}
}

func run(log logr.Logger, o options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	mgr, err := agent.NewManager(cfg, agent.ManagerOptions{NodeName: o.nodeName, MetricsAddr: o.metricsAddr, ProbeAddr: o.probeAddr})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	host, err := hostnet.New()
	if err != nil {
		return err
	}
	defer host.Close()
	conn := agent.NewConnector(o.ovsdbSocket, log)
	conn.VswitchdCtl = o.vswitchdCtl
	defer conn.Close()
	r := &agent.Reconciler{
		Client: mgr.GetClient(), NodeName: o.nodeName, UnderlayInterface: o.underlayInterface,
		Host: host, OVS: conn, CNIConfDir: o.cniConfDir, CNIBinDir: o.cniBinDir, CNIIPAMDataDir: o.ipamDataDir, Resync: o.resync, Log: log.WithName("agent"),
		APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("ovsmesh-agent"),
	}
	if err := agent.SetupWithManager(mgr, r, conn.Events); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	// A node that left the mesh is cleaned up when its agent pod is stopped (agent/leave.go).
	if err := mgr.Add(r.ShutdownCleanup()); err != nil {
		return err
	}
	if o.namespace == "" {
		log.Info("no --namespace or POD_NAMESPACE: no heartbeat Lease, so the operator cannot tell when this agent stops")
	} else {
		hb, err := agent.NewHeartbeat(cfg, mgr.GetClient(), o.namespace, o.nodeName, clock.RealClock{})
		if err != nil {
			return err
		}
		if err := mgr.Add(hb); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
	}
	if o.probeAddr != "0" && o.probeAddr != "" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return err
		}
	}
	ctx := ctrl.SetupSignalHandler()
	if err := agent.WatchHost(ctx, host, conn.Events); err != nil {
		log.Error(err, "cannot watch the host for drift; it is repaired at the periodic resync only", "resync", o.resync.String())
	}
	log.Info("starting agent", "ovsdbSocket", o.ovsdbSocket, "cniConfDir", o.cniConfDir)
	// On SIGTERM the manager stops and the agent exits leaving the data path in place.
	return mgr.Start(ctx)
}

// cleanup removes everything from the node. Bridge names and the cluster CIDR come from the
// NetworkCluster when the API server can be reached, else from --ovs-bridge/--linux-bridge.
// When the API is reachable it also reports CleanedUp in this node's NodeSubnet.
func cleanup(log logr.Logger, o options) error {
	ctx, cancel := context.WithTimeout(ctrl.SetupSignalHandler(), 2*time.Minute)
	defer cancel()
	target := agent.TargetFor(o.ovsBridge, o.linuxBridge)

	var c client.Client
	var nc v1alpha1.NetworkCluster
	if cfg, err := ctrl.GetConfig(); err != nil {
		log.Info("no API access; using the bridge names from the flags", "reason", err.Error())
	} else if c, err = client.New(cfg, client.Options{Scheme: agent.Scheme()}); err != nil {
		log.Info("no API client; using the bridge names from the flags", "reason", err.Error())
	} else if err := getWithTimeout(ctx, c, types.NamespacedName{Name: v1alpha1.NetworkClusterName}, &nc); err != nil {
		log.Info("NetworkCluster not readable; using the bridge names from the flags", "reason", err.Error())
	} else {
		target = agent.TargetForSpec(nc.Spec)
	}

	host, err := hostnet.New()
	if err != nil {
		return err
	}
	defer host.Close()
	conn := agent.NewConnector(o.ovsdbSocket, log)
	defer conn.Close()
	cl := agent.Cleaner{Host: host, OVS: conn, CNIConfDir: o.cniConfDir, CNIBinDir: o.cniBinDir, Log: log}
	_, cerr := cl.Cleanup(ctx, target, true)
	if c != nil {
		if err := agent.ReportCleanedUp(ctx, c, o.nodeName, nc.Generation, cerr); err != nil && !apierrors.IsNotFound(err) {
			log.Error(err, "reporting CleanedUp")
		}
	}
	if cerr == nil {
		log.Info("node cleaned up")
	}
	return cerr
}

func getWithTimeout(ctx context.Context, c client.Client, key types.NamespacedName, obj client.Object) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Get(ctx, key, obj)
}
