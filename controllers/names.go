package controllers

import "time"

// Names and labels of what the operator creates. The agent objects have fixed names: there is
// one NetworkCluster, so there is one agent DaemonSet, and the admission policy
// (policy/nodesubnet_agent_restriction.yaml) matches the agent ServiceAccount by this name.
const (
	AgentName = "ovsmesh-agent" // DaemonSet, ServiceAccount, ClusterRole, ClusterRoleBinding
	// DefaultAgentMetricsPort is the agents' metrics port (HTTPS) on every node: clear of
	// the kubelet (10250), kube-proxy (10249, 10256) and the common pod networks' ports.
	DefaultAgentMetricsPort = 9474

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
