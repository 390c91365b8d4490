package agent

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
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

// LastResult returns the result of the last apply.
func (r *Reconciler) LastResult() (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Result, r.last.Err
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	log := r.Log // main names the node in every line already
	r.pass.Lock()
	defer r.pass.Unlock()
	if r.stopped {
		return ctrl.Result{}, nil
	}

	var list v1alpha1.NodeSubnetList
	if err := r.Client.List(ctx, &list); err != nil {
		return ctrl.Result{}, err
	}
	own := findSubnet(list.Items, r.NodeName)
	if own == nil {
		return r.leaveWithoutSubnet(ctx, log)
	}
	var nc v1alpha1.NetworkCluster
	ncErr := r.Client.Get(ctx, types.NamespacedName{Name: v1alpha1.NetworkClusterName}, &nc)
	if ncErr != nil && !apierrors.IsNotFound(ncErr) {
		return ctrl.Result{}, ncErr
	}
	if own.Spec.Teardown {
		// Even without a NetworkCluster (bridge names then take their defaults).
		return r.teardown(ctx, log, &nc, own)
	}
	if ncErr != nil {
		log.Info("no NetworkCluster yet; waiting")
		return ctrl.Result{}, nil
	}

	s, err := r.desired(&nc, list.Items, own)
	if err == nil {
		var side OVSSide
		side, err = r.OVS.Connect(ctx)
		if err != nil {
			err = withReason(v1alpha1.ReasonOVSUnavailable, err)
		} else {
			a := Applier{Host: r.Host, OVS: side, CNIConfDir: r.CNIConfDir, CNIBinDir: r.CNIBinDir, CNIIPAMDataDir: r.CNIIPAMDataDir, Log: log}
			var res Result
			res, err = a.Apply(ctx, s)
			r.record(res, err)
			if err == nil {
				if res.Changed() {
					log.Info("node converged", "hostChanges", len(res.HostChanges), "ovsOperations", res.OVSOps,
						"cniWritten", res.CNIWritten, "tunnels", res.Tunnels.Count, "mtu", s.MTU, "took", res.Duration.String())
				}
				st := readyStatus(own.Status, nc.Generation, s, res)
				r.emit(own, st, res, true, list.Items)
				if perr := r.patchStatus(ctx, own, st); perr != nil {
					return ctrl.Result{}, perr
				}
				if !res.Tunnels.Ready() {
					// Port state changes arrive through OVSDB too; polling is the safety net
					// that turns Ready on within a second of convergence.
					return ctrl.Result{RequeueAfter: time.Second}, nil
				}
				return ctrl.Result{RequeueAfter: r.Resync}, nil
			}
		}
	}
	log.Error(err, "node not ready", "reason", ReasonOf(err))
	st := notReadyStatus(own.Status, nc.Generation, err)
	r.emit(own, st, Result{}, false, list.Items)
	if perr := r.patchStatus(ctx, own, st); perr != nil {
		log.Error(perr, "patching status")
	}
	// Returning the error requeues with the controller's exponential backoff.
	return ctrl.Result{}, err
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

// teardown removes everything and reports CleanedUp. It never re-applies anything while
// teardown is set.
func (r *Reconciler) teardown(ctx context.Context, log logr.Logger, nc *v1alpha1.NetworkCluster, own *v1alpha1.NodeSubnet) (ctrl.Result, error) {
	_, cerr := r.cleanup(ctx, log, TargetForSpec(nc.Spec), true)
	if perr := r.patchStatus(ctx, own, cleanedStatus(own.Status, nc.Generation, cerr)); perr != nil {
		return ctrl.Result{}, perr
	}
	if cerr != nil {
		return ctrl.Result{}, cerr
	}
	log.Info("node cleaned up on request (NodeSubnet spec.teardown)")
	return ctrl.Result{}, nil
}

// ReportCleanedUp patches the CleanedUp condition (True, or False with err) into the
// NodeSubnet of nodeName. The cleanup subcommand uses it.
func ReportCleanedUp(ctx context.Context, c client.Client, nodeName string, generation int64, err error) error {
	var own v1alpha1.NodeSubnet
	if gerr := c.Get(ctx, types.NamespacedName{Name: nodeName}, &own); gerr != nil {
		return gerr
	}
	r := Reconciler{Client: c, NodeName: nodeName}
	return r.patchStatus(ctx, &own, cleanedStatus(own.Status, generation, err))
}

func (r *Reconciler) record(res Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = lastApply{Result: res, Err: err}
}

// patchStatus writes st into the NodeSubnet's status subresource when it differs. A merge
// patch carries only the status, so it cannot clobber the operator's spec writes.
func (r *Reconciler) patchStatus(ctx context.Context, own *v1alpha1.NodeSubnet, st v1alpha1.NodeSubnetStatus) error {
	if err := r.markNode(ctx, st); err != nil {
		// The Node condition is for the scheduler; the NodeSubnet status is written anyway.
		r.Log.Error(err, "setting the Node condition")
	}
	if reflect.DeepEqual(own.Status, st) {
		return nil
	}
	updated := own.DeepCopy()
	updated.Status = st
	ctx, cancel := apiCtx(ctx)
	defer cancel()
	if err := r.Client.Status().Patch(ctx, updated, client.MergeFrom(own)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching NodeSubnet %s status: %w", own.Name, err)
	}
	return nil
}
