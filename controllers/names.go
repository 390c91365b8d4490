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
	// DefaultBlockLeaseDuration is how long a subnet block stays with an allocator that no
	// longer renews it (blocks.go): after a crash, others take its blocks over then (a stopping
	// operator releases them at once). Passes renew every third of it; 30 s is twice what
	// leader election waits, so a loaded API server does not cost a live allocator its blocks.
	DefaultBlockLeaseDuration = 30 * time.Second
)

// managedLabels are put on every object the operator creates, so that they can be found (and
// the cache can be limited to them).
func managedLabels() map[string]string {
	return map[string]string{LabelPartOf: "ovsmesh", LabelManagedBy: FieldManager}
}
