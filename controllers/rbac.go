package controllers

// RBAC of the operator, generated into config/rbac/role.yaml by `make manifests`: a
// ClusterRole for what is cluster-scoped and a Role (namespace=system, which kustomize and OLM
// put in the operator's install namespace) for what lives in the operator's namespace.
//
// Namespaced: the agent DaemonSet and ServiceAccount, the subnet blocks (Leases) and, later,
// the agents' heartbeat Leases are all in Options.Namespace, the operator's own namespace
// (--agent-namespace defaults to $POD_NAMESPACE; another namespace would need this Role
// bound there too). The manager's cache watches these kinds in that namespace only
// (CacheOptions), so it needs no cluster-wide list or watch on them.
//
// Cluster-scoped: the operator creates the agents' ClusterRole, so it must hold every
// permission it grants (RBAC escalation prevention), hence nodes and the NodeSubnet status
// it hands to agents. It holds no `escalate`, so it can never write a ClusterRole granting
// more than it holds itself.
//
// Writes of cluster-scoped RBAC and admission policies are limited by name to the operator's
// own objects: AgentName for the agents' ClusterRole/Binding, AgentPolicyName for the
// admission policy and its binding (markers cannot refer to the constants, so they repeat
// them). That covers get/list/watch too: the cache selects these kinds by metadata.name,
// which the API server authorizes as that resourceName (CacheOptions).
//
// `create` and resourceNames: Kubernetes cannot limit a plain create (POST) by name, because
// the name is not part of the request URL when it is authorized; a name-limited create rule
// never matches a POST, so the operator can POST no ClusterRole, ClusterRoleBinding or
// admission policy at all. Server-side apply (PATCH to .../<name>) does name the object, and
// the API server authorizes the create it may turn into with that name
// (k8s.io/apiserver endpoints/handlers/patch.go), so the name-limited rule below lets the
// operator create exactly its own objects, which it only ever writes by server-side apply.
//
// `bind` on the agents' ClusterRole (by name): creating the agents' ClusterRoleBinding then
// does not depend on the operator holding everything that role grants at that moment; it
// cannot bind any other ClusterRole (cluster-admin, say) that it does not itself hold.
//
// Events stay cluster-wide: events about cluster-scoped objects (NetworkCluster, NodeSubnets,
// Nodes) are written in the default namespace.

// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=networkclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=networkclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=networkclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=nodesubnets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=network.ovsmesh.io,resources=nodesubnets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes/status,verbs=patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=get;list;watch;create;update;patch;delete,resourceNames=ovsmesh-agent
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=ovsmesh-agent
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=get;list;watch;create;update;patch;delete,resourceNames=ovsmesh-nodesubnet-agent-restriction

// +kubebuilder:rbac:groups="",namespace=system,resources=serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,namespace=system,resources=daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=system,resources=leases,verbs=get;list;watch;create;update;patch;delete
