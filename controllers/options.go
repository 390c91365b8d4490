package controllers

import (
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Names and labels of what the operator creates. The agent objects have fixed names: there is
// one NetworkCluster, so there is one agent DaemonSet, and the admission policy
// (policy/nodesubnet_agent_restriction.yaml) matches the agent ServiceAccount by this name.
const (
	AgentName = "ovsmesh-agent" // DaemonSet, ServiceAccount, ClusterRole, ClusterRoleBinding
	// AgentMetricsPort is the agents' metrics port (HTTPS) on every node: clear of the
	// kubelet (10250), kube-proxy (10249, 10256) and the common pod networks' ports.
	AgentMetricsPort = 9474

	// FieldManager is the server-side apply field manager of the operator.
	FieldManager = "ovsmesh-operator"

	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// DefaultNamespace is used when neither --agent-namespace nor $POD_NAMESPACE is set.
	DefaultNamespace = "ovsmesh-system"
	// DefaultCleanupTimeout bounds how long uninstall waits for agents to report CleanedUp.
	DefaultCleanupTimeout = 2 * time.Minute
	// DefaultClaimGracePeriod is how long an unfinished subnet claim of a node that is gone is
	// kept before it is released (see claims.go).
	DefaultClaimGracePeriod = time.Minute
)

// managedLabels are put on every object the operator creates, so that they can be found (and
// the cache can be limited to them).
func managedLabels() map[string]string {
	return map[string]string{LabelPartOf: "ovsmesh", LabelManagedBy: FieldManager}
}

// Options configure the reconcilers.
type Options struct {
	// Namespace holds the agent DaemonSet and ServiceAccount and the subnet claims: the
	// operator's own namespace.
	Namespace string
	// CleanupTimeout bounds the wait for agents' CleanedUp reports on uninstall.
	CleanupTimeout time.Duration
	// ClaimGracePeriod: see DefaultClaimGracePeriod.
	ClaimGracePeriod time.Duration
	// AllocationWorkers: see DefaultAllocationWorkers.
	AllocationWorkers int
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = DefaultCleanupTimeout
	}
	if o.ClaimGracePeriod <= 0 {
		o.ClaimGracePeriod = DefaultClaimGracePeriod
	}
	if o.AllocationWorkers <= 0 {
		o.AllocationWorkers = DefaultAllocationWorkers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Setup registers the IPAM (NodeSubnet) and NetworkCluster reconcilers with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts = opts.withDefaults()
	ipam := &NodeSubnetReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("ovsmesh-ipam"),
		Options:   opts,
	}
	if err := ipam.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the NodeSubnet reconciler: %w", err)
	}
	nc := &NetworkClusterReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("ovsmesh-operator"),
		Options:   opts,
	}
	if err := nc.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the NetworkCluster reconciler: %w", err)
	}
	return nil
}

// CacheOptions limits the manager's cache to what the operator owns, which is also all its
// RBAC lets it read (rbac.go): DaemonSets, ServiceAccounts, Roles, RoleBindings, subnet claims
// and agent heartbeats of its namespace, and the ClusterRole/Binding and admission
// policy/binding of the agents, selected by name (a list or watch with the field selector
// metadata.name=<name> is authorized as that resourceName) as well as by the operator's label.
// Without this, the watches would cache every DaemonSet, ServiceAccount and Lease (one per
// node in kube-node-lease) of the cluster, and need the right to.
func CacheOptions(namespace string) cache.Options {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	inNS := cache.ByObject{Namespaces: map[string]cache.Config{namespace: {}}}
	// Subnet claims and the agents' heartbeats: the Leases of ovsmesh in the namespace (not
	// the leader election Lease, renewed every few seconds).
	leases := cache.ByObject{
		Namespaces: map[string]cache.Config{namespace: {}},
		Label:      labels.SelectorFromSet(map[string]string{LabelPartOf: "ovsmesh"}),
	}
	managed := labels.SelectorFromSet(map[string]string{LabelManagedBy: FieldManager})
	named := func(name string) cache.ByObject {
		return cache.ByObject{Label: managed, Field: fields.OneTermEqualSelector("metadata.name", name)}
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&appsv1.DaemonSet{}:                                  inNS,
		&corev1.ServiceAccount{}:                             inNS,
		&rbacv1.Role{}:                                       inNS,
		&rbacv1.RoleBinding{}:                                inNS,
		&coordinationv1.Lease{}:                              leases,
		&rbacv1.ClusterRole{}:                                named(AgentName),
		&rbacv1.ClusterRoleBinding{}:                         named(AgentName),
		&admissionregistrationv1.ValidatingAdmissionPolicy{}: named(AgentPolicyName),
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{}: named(AgentPolicyName),
		// Every Node and NodeSubnet of the cluster is cached; see trimNodeSubnet.
		&corev1.Node{}:         {Transform: cache.TransformStripManagedFields()},
		&v1alpha1.NodeSubnet{}: {Transform: trimNodeSubnet},
	}}
}

var stripManagedFields = cache.TransformStripManagedFields()

// trimNodeSubnet drops what the operator never reads from a cached NodeSubnet: its
// managedFields (the largest part of a NodeSubnet once its agent has written status) and
// the list of unhealthy peers. The operator aggregates conditions (Ready, CleanedUp) and
// counts. Patches are merge patches between two copies of the trimmed object, so the
// dropped list is never sent back.
func trimNodeSubnet(in any) (any, error) {
	out, err := stripManagedFields(in)
	if ns, ok := out.(*v1alpha1.NodeSubnet); ok {
		ns.Status.UnhealthyPeers = nil
	}
	return out, err
}
