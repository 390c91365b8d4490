package controllers

import (
	rbacv1 "k8s.io/api/rbac/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// agentRole lets the agents renew their heartbeat Leases (v1alpha1.HeartbeatLeaseName) in the
// operator's namespace. RBAC cannot limit create by name, nor name each node's own Lease in
// one Role; the admission policy (policy/nodesubnet_agent_restriction.yaml) narrows it to the
// Lease of the agent's own node, so an agent cannot touch another node's heartbeat, a subnet
// block or the operator's leader election Lease.
func agentRole(nc *v1alpha1.NetworkCluster, namespace string) *rbacv1ac.RoleApplyConfiguration {
	return rbacv1ac.Role(AgentName, namespace).
		WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc)).
		WithRules(rbacv1ac.PolicyRule().WithAPIGroups("coordination.k8s.io").
			WithResources("leases").WithVerbs("get", "create", "update"))
}

func agentRoleBinding(nc *v1alpha1.NetworkCluster, namespace string) *rbacv1ac.RoleBindingApplyConfiguration {
	return rbacv1ac.RoleBinding(AgentName, namespace).
		WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(AgentName)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.ServiceAccountKind).WithName(AgentName).WithNamespace(namespace))
}
