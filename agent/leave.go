package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// A node leaves the mesh when its label stops matching spec.nodeSelector, when it is
// deleted, or when the NetworkCluster goes: the operator then deletes its NodeSubnet, and
// (for a label or a new selector) the DaemonSet controller deletes its agent pod. Either may
// come first, so the agent tears the data path down along both paths:
//
//   - its NodeSubnet is gone while the agent runs (leaveWithoutSubnet): the bridges, the
//     tunnels, the route, the masquerade table and the CNI config go; the plugin binaries
//     stay, since install-cni runs only when the pod starts and a rejoin needs them;
//   - the agent is stopped (ShutdownCleanup): if the API server says the node is no longer in
//     the mesh, the same, plus the plugins it installed (this pod will not come back).
//
// A stop while the node is still in the mesh (an upgrade, a restart, a crash) changes
// nothing, and neither does one where the API server cannot say: a restart must not cost
// traffic. A node that rejoins gets a new NodeSubnet, perhaps another subnet, and is built
// again as any new node (an earlier gateway left on the bridge is replaced, see
// hostnet.Bridge.ClusterCIDR).

// shutdownCleanupTimeout bounds the cleanup at shutdown: well inside the pod's 30 s grace
// period.
const shutdownCleanupTimeout = 20 * time.Second

// reader is the uncached reader for decisions that remove things: the cache may lag.
func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// leaveWithoutSubnet handles a pass that finds no NodeSubnet for this node: a new node
// waiting for the operator, or one that left the mesh. The API server confirms (the cache
// may not have seen a NodeSubnet just created); then, when this node still has ovsmesh's
// data path, it is removed.
func (r *Reconciler) leaveWithoutSubnet(ctx context.Context, log logr.Logger) (ctrl.Result, error) {
	var own v1alpha1.NodeSubnet
	err := r.reader().Get(ctx, types.NamespacedName{Name: r.NodeName}, &own)
	if err == nil {
		return ctrl.Result{RequeueAfter: time.Second}, nil // the cache lags; look again
	}
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	var nc v1alpha1.NetworkCluster
	if err := r.Client.Get(ctx, types.NamespacedName{Name: v1alpha1.NetworkClusterName}, &nc); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	t := TargetForSpec(nc.Spec)
	has, err := r.hasDataPath(t)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !has {
		log.Info("no NodeSubnet for this node yet; waiting for the operator")
		return ctrl.Result{}, nil
	}
	log.Info("this node left the mesh (its NodeSubnet is gone): removing its data path")
	_, cerr := r.cleanup(ctx, log, t, false)
	r.record(Result{}, cerr)
	if cerr == nil {
		r.reporter().markNodeRemoved(ctx)
	}
	return ctrl.Result{}, cerr
}

// hasDataPath reports whether the node still has ovsmesh's Linux bridge or CNI config.
func (r *Reconciler) hasDataPath(t CleanupTarget) (bool, error) {
	if _, err := os.Stat(filepath.Join(r.CNIConfDir, t.CNIConfFile)); err == nil {
		return true, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	idx, err := r.Host.LinkIndex(t.Host.Bridge)
	return idx != 0, err
}

// cleanup removes the data path named by t, with the plugins when withPlugins.
func (r *Reconciler) cleanup(ctx context.Context, log logr.Logger, t CleanupTarget, withPlugins bool) ([]string, error) {
	return Cleaner{Host: r.Host, OVS: r.OVS, CNIConfDir: r.CNIConfDir, CNIBinDir: r.CNIBinDir, Log: log}.Cleanup(ctx, t, withPlugins)
}

// ShutdownCleanup returns a runnable for the agent's manager that, when the manager stops,
// removes this node's data path if (and only if) the API server says the node is no longer
// in the mesh. Once it has, no further pass re-applies anything.
func (r *Reconciler) ShutdownCleanup() manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		cctx, cancel := context.WithTimeout(context.Background(), shutdownCleanupTimeout)
		defer cancel()
		log := r.Log
		t, why, err := r.leaving(cctx)
		if err != nil {
			log.Error(err, "stopping: cannot tell whether this node is still in the mesh; leaving its data path as it is")
			return nil
		}
		if why == "" {
			log.Info("stopping; the node stays in the mesh, its data path stays as it is")
			return nil
		}
		r.pass.Lock()
		defer r.pass.Unlock()
		r.stopped = true
		log.Info("stopping and this node left the mesh: removing its data path", "why", why)
		if _, err := r.cleanup(cctx, log, t, true); err != nil {
			log.Error(err, "cleanup at shutdown")
		} else {
			r.reporter().markNodeRemoved(cctx)
		}
		return nil
	})
}

// leaving asks the API server whether this node has left the mesh: why is "" when it has
// not. Any error means "cannot tell".
func (r *Reconciler) leaving(ctx context.Context) (t CleanupTarget, why string, err error) {
	rd := r.reader()
	var nc v1alpha1.NetworkCluster
	switch err := rd.Get(ctx, types.NamespacedName{Name: v1alpha1.NetworkClusterName}, &nc); {
	case apierrors.IsNotFound(err):
		return TargetForSpec(nc.Spec), "the NetworkCluster is gone", nil
	case err != nil:
		return t, "", err
	}
	t = TargetForSpec(nc.Spec)
	if nc.DeletionTimestamp != nil {
		return t, "the NetworkCluster is being deleted", nil
	}
	var node corev1.Node
	switch err := rd.Get(ctx, types.NamespacedName{Name: r.NodeName}, &node); {
	case apierrors.IsNotFound(err):
		return t, "the Node is gone", nil
	case err != nil:
		return t, "", err
	}
	if !v1alpha1.InMesh(&node, nc.Spec.NodeSelectorOf()) {
		return t, fmt.Sprintf("the Node no longer matches nodeSelector %v (or is being deleted)", nc.Spec.NodeSelector), nil
	}
	var own v1alpha1.NodeSubnet
	switch err := rd.Get(ctx, types.NamespacedName{Name: r.NodeName}, &own); {
	case apierrors.IsNotFound(err):
		return t, "its NodeSubnet is gone", nil
	case err != nil:
		return t, "", err
	}
	if own.Spec.Teardown {
		return t, "its NodeSubnet asks for teardown", nil
	}
	return t, "", nil
}
