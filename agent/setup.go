package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/metricsauth"
)

// Scheme is the agent's scheme: core types (Node) and the ovsmesh API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// ManagerOptions are the agent manager's settings.
type ManagerOptions struct {
	NodeName string
	// MetricsAddr and ProbeAddr: "0" disables them (the agent runs with hostNetwork, so any
	// port it opens is a port on the node; metrics are served over HTTPS to authorized
	// clients only, see internal/metricsauth).
	MetricsAddr string
	ProbeAddr   string
	// SkipNameValidation lets tests run more than one manager in a process.
	SkipNameValidation bool
}

// NewManager returns a controller-runtime manager whose cache holds only what the agent
// reads: the NetworkCluster singleton, every NodeSubnet (peers without their status, see
// trimForCache) and this node's Node, none with managedFields. Field selectors
// make the API server filter, so a 5,000-node cluster does not stream every Node to every
// agent. No leader election: there is one agent per node by design.
func NewManager(cfg *rest.Config, o ManagerOptions) (manager.Manager, error) {
	return ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 Scheme(),
		Metrics:                metricsauth.Options(o.MetricsAddr, ""),
		HealthProbeBindAddress: o.ProbeAddr,
		Controller:             config.Controller{SkipNameValidation: &o.SkipNameValidation},
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&v1alpha1.NetworkCluster{}: {Field: fields.OneTermEqualSelector("metadata.name", v1alpha1.NetworkClusterName)},
				&v1alpha1.NodeSubnet{}:     {Transform: trimForCache(o.NodeName)},
				&corev1.Node{}:             {Field: fields.OneTermEqualSelector("metadata.name", o.NodeName)},
			},
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
}

// SetupWithManager registers the reconciler. Every source maps to the single request named
// after this node, so any number of events collapse into one pass. ovsEvents carries OVS
// change and reconnect notifications (source.Channel), which is how the agent reapplies after
// ovs-vswitchd or ovsdb-server restarts and refreshes peer state in status.
func SetupWithManager(mgr manager.Manager, r *Reconciler, ovsEvents <-chan event.GenericEvent) error {
	req := reconcile.Request{NamespacedName: client.ObjectKey{Name: r.NodeName}}
	toNode := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{req}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("ovsmesh-agent").
		// Spec changes only: status writes (this agent's and every other agent's peer
		// states) must not wake every agent in the cluster.
		Watches(&v1alpha1.NetworkCluster{}, toNode, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.NodeSubnet{}, toNode, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// The Node matters only through its addresses (the underlay may move).
		Watches(&corev1.Node{}, toNode, builder.WithPredicates(addressesChanged())).
		WatchesRawSource(source.Channel(ovsEvents, toNode)).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: 1,
			// Every pass has a deadline (deadlines.go).
			ReconciliationTimeout: PassTimeout,
			// Errors (OVS not up yet, a kbr0 conflict) retry from 500 ms up to 30 s, not
			// the default 1,000 s: the node should converge soon after the cause goes.
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](500*time.Millisecond, 30*time.Second),
		}).
		Complete(r)
}

// addressesChanged passes Node updates that change status.addresses (and every create and
// delete), not the periodic heartbeat updates.
func addressesChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Node)
		n, ok2 := e.ObjectNew.(*corev1.Node)
		return !ok1 || !ok2 || !equality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses)
	}}
}
