package controllers

// RBAC the operator needs for the agents' heartbeat (agent_heartbeat.go): it creates the
// agents' Role and RoleBinding in its own namespace ("system" here; kustomize and OLM put the
// install namespace in its place). It already holds the leases permissions it grants them.
// Kept apart from rbac.go so that namespaced permissions can be reorganised there freely.

// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete,namespace=system
