package controllers

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// CacheOptions limits the manager's cache to what the operator owns, which is also all its
// RBAC lets it read (rbac.go): DaemonSets, ServiceAccounts, Roles, RoleBindings, subnet blocks
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
	// Subnet blocks and the agents' heartbeats: the Leases of ovsmesh in the namespace (not
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
