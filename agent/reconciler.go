package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/hostnet"
)

// OVSConnector opens the OVS side lazily: the agent starts (and reports status) even when
// ovsdb-server is not up yet, and retries with backoff until it is.
type OVSConnector interface {
	// Connect returns the OVS side, dialling on first use. Once connected, the returned
	// side reconnects by itself.
	Connect(ctx context.Context) (OVSSide, error)
}

// Reconciler is the agent's one reconcile loop: fetch → compute desired → apply host and OVS
// side → write the CNI config → patch its own NodeSubnet status. Every watched object maps to
// the same request (this node), so events coalesce into one level-triggered pass.
type Reconciler struct {
	Client   client.Client
	NodeName string
	// UnderlayInterface overrides the interface whose MTU sizes the pod MTU; empty means
	// the interface holding the node IP from the NodeSubnet.
	UnderlayInterface string
	Host              hostnet.Interface
	OVS               OVSConnector
	CNIConfDir        string
	// CNIBinDir is where install-cni recorded the plugins it installed; uninstall removes
	// them ("" = leave them).
	CNIBinDir      string
	CNIIPAMDataDir string
	// Resync re-runs the loop this long after a success: host-side drift (someone deleting
	// the route) has no watch.
	Resync time.Duration
	Log    logr.Logger
	// APIReader reads around the cache, for decisions that remove things (leave.go); nil
	// means Client.
	APIReader client.Reader
	// Recorder records the events of events.go on the NodeSubnet; nil records none.
	Recorder recorder.EventRecorder

	mu   sync.Mutex
	last lastApply
	// pass serialises a reconcile pass with the cleanup at shutdown; stopped (under pass)
	// says that cleanup ran and nothing may be applied again.
	pass    sync.Mutex
	stopped bool
}

// lastApply remembers what the previous pass did, for tests and logs.
type lastApply struct {
	Result Result
	Err    error
}

// Reconcile implements reconcile.Reconciler, in the shape of cluster-api's reconcilers:
// fetch what the pass reads (every NodeSubnet, this node's, the NetworkCluster), take one of
// three paths — leave (no NodeSubnet), teardown (spec.teardown), converge — and write the
// status the path decided once, in a deferred patch, whatever it returned.
func (r *Reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (res ctrl.Result, retErr error) {
	log := r.Log // main names the node in every line already
	r.pass.Lock()
	defer r.pass.Unlock()
	if r.stopped {
		return ctrl.Result{}, nil
	}

	in, err := r.fetch(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if in.own == nil {
		return r.leaveWithoutSubnet(ctx, log)
	}
	if !in.own.Spec.Teardown && in.nc == nil {
		log.Info("no NetworkCluster yet; waiting")
		return ctrl.Result{}, nil
	}

	st := in.own.Status
	defer func() {
		if perr := r.reporter().report(ctx, in.own, st); perr != nil {
			// A status that did not reach the API server is retried with the backoff; a
			// result beside an error would be ignored anyway.
			res, retErr = ctrl.Result{}, errors.Join(retErr, perr)
		}
	}()
	if in.own.Spec.Teardown {
		st, err = r.teardown(ctx, log, in)
		return ctrl.Result{}, err
	}
	return r.converge(ctx, log, in, &st)
}

// inputs is what one pass reads from the cache.
type inputs struct {
	subnets []v1alpha1.NodeSubnet
	own     *v1alpha1.NodeSubnet     // nil: no NodeSubnet for this node
	nc      *v1alpha1.NetworkCluster // nil: none
}

func (r *Reconciler) fetch(ctx context.Context) (inputs, error) {
	var in inputs
	var list v1alpha1.NodeSubnetList
	if err := r.Client.List(ctx, &list); err != nil {
		return in, err
	}
	in.subnets, in.own = list.Items, findSubnet(list.Items, r.NodeName)
	var nc v1alpha1.NetworkCluster
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: v1alpha1.NetworkClusterName}, &nc); {
	case err == nil:
		in.nc = &nc
	case !apierrors.IsNotFound(err):
		return in, err
	}
	return in, nil
}

// converge applies the desired state and sets *st to the status it earned: Ready (or
// converging) after a successful apply, Ready=False with the failure's reason otherwise.
func (r *Reconciler) converge(ctx context.Context, log logr.Logger, in inputs, st *v1alpha1.NodeSubnetStatus) (ctrl.Result, error) {
	s, res, err := r.apply(ctx, log, in)
	r.record(res, err)
	if err != nil {
		log.Error(err, "node not ready", "reason", ReasonOf(err))
		*st = notReadyStatus(in.own.Status, in.nc.Generation, err)
		r.emit(in.own, *st, Result{}, false, in.subnets)
		// Returning the error requeues with the controller's exponential backoff.
		return ctrl.Result{}, err
	}
	if res.Changed() {
		log.Info("node converged", "hostChanges", len(res.HostChanges), "ovsOperations", res.OVSOps,
			"cniWritten", res.CNIWritten, "tunnels", res.Tunnels.Count, "mtu", s.MTU, "took", res.Duration.String())
	}
	*st = readyStatus(in.own.Status, in.nc.Generation, s, res)
	r.emit(in.own, *st, res, true, in.subnets)
	if !res.Tunnels.Ready() {
		// Port state changes arrive through OVSDB too; polling is the safety net that turns
		// Ready on within a second of convergence.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	return ctrl.Result{RequeueAfter: r.Resync}, nil
}

// apply computes the node state and makes the node match it.
func (r *Reconciler) apply(ctx context.Context, log logr.Logger, in inputs) (NodeState, Result, error) {
	s, err := r.desired(in.nc, in.subnets, in.own)
	if err != nil {
		return s, Result{}, err
	}
	side, err := r.OVS.Connect(ctx)
	if err != nil {
		return s, Result{}, withReason(v1alpha1.ReasonOVSUnavailable, err)
	}
	a := Applier{Host: r.Host, OVS: side, CNIConfDir: r.CNIConfDir, CNIBinDir: r.CNIBinDir, CNIIPAMDataDir: r.CNIIPAMDataDir, Log: log}
	res, err := a.Apply(ctx, s)
	return s, res, err
}

func (r *Reconciler) reporter() reporter {
	return reporter{client: r.Client, nodeName: r.NodeName, log: r.Log}
}

// desired finds the underlay and computes the node state.
func (r *Reconciler) desired(nc *v1alpha1.NetworkCluster, subnets []v1alpha1.NodeSubnet, own *v1alpha1.NodeSubnet) (NodeState, error) {
	ip, err := netip.ParseAddr(own.Spec.NodeIP)
	if err != nil {
		return NodeState{}, withReason(v1alpha1.ReasonInvalidConfig, fmt.Errorf("NodeSubnet %s nodeIP %q: %w", own.Name, own.Spec.NodeIP, err))
	}
	u, err := r.Host.FindUnderlay(r.UnderlayInterface, ip)
	if err != nil {
		return NodeState{}, withReason(v1alpha1.ReasonNoUnderlay, err)
	}
	s, err := Desired(nc.Spec, subnets, r.NodeName, u.MTU)
	if err != nil {
		return s, withReason(v1alpha1.ReasonInvalidConfig, err)
	}
	return s, nil
}

// teardown removes everything and returns the CleanedUp status. It never re-applies
// anything while teardown is set. Without a NetworkCluster the bridge names take their
// defaults.
func (r *Reconciler) teardown(ctx context.Context, log logr.Logger, in inputs) (v1alpha1.NodeSubnetStatus, error) {
	var nc v1alpha1.NetworkCluster
	if in.nc != nil {
		nc = *in.nc
	}
	_, err := r.cleanup(ctx, log, TargetForSpec(nc.Spec), true)
	if err == nil {
		log.Info("node cleaned up on request (NodeSubnet spec.teardown)")
	}
	return cleanedStatus(in.own.Status, nc.Generation, err), err
}

func (r *Reconciler) record(res Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = lastApply{Result: res, Err: err}
}
