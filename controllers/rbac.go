package controllers

// RBAC of the operator, generated into config/rbac/role.yaml by `make manifests`.
// The operator creates the agents' ClusterRole, so it must hold every permission it grants
// (RBAC escalation prevention), hence nodes and the NodeSubnet status it hands to agents.
// It also creates the admission policy that narrows the agents' NodeSubnet status writes
// (agent_policy.go): it may create any, but change or delete only its own, by name
// (AgentPolicyName; markers cannot refer to the constant). An attacker holding the
// operator's credential could still create a policy that denies, but not weaken or remove
// the cluster's other policies.

// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=networkclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=networkclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=networkclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=nodesubnets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=nodesubnets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=update;patch;delete,resourceNames=ovsmesh-nodesubnet-agent-restriction
