// Package controllers holds the ovsmesh operator's reconcilers: subnet IPAM (one NodeSubnet per
// selected Node), the NetworkCluster reconciler (agent DaemonSet, its RBAC, status aggregation)
// and uninstall orchestration behind a finalizer.
//
// Where things are:
//
//	ipam.go                     Pool: the pure allocator (cluster CIDR, prefix, used set → next subnet)
//	blocks.go                   why and how CIDRs are handed out in blocks (collision-proof across
//	                            replicas): block Leases, their epochs, the pure rules
//	picker.go                   a pass's subnets, lowest first, from the blocks it acquires and renews
//	subnet_plan.go              the IPAM pass as a pure function of nodes and NodeSubnets
//	ipam_reconciler.go          IPAMReconciler: carries the plan out (the only place IPAM writes)
//	allocate_pass.go            a pass's allocations, concurrently, CIDRs picked oldest node first
//	allocate.go                 one allocation (the NodeSubnet create) and the pass's fence
//	agent_resources.go          the agent DaemonSet, ServiceAccount, ClusterRole/Binding
//	agent_heartbeat.go          the agents' Role/Binding for their heartbeat Leases
//	agent_policy.go             the admission policy keeping each agent to its own NodeSubnet
//	                            and heartbeat Lease (policy/*.yaml, embedded: the only copy)
//	heartbeats.go               heartbeat expiry: a silent agent's node stops counting as ready
//	networkcluster_controller.go applies them; status computed in networkcluster_status.go
//	uninstall.go                teardown → wait for CleanedUp (bounded) → remove → finalizer off
//	rbac.go                     the operator's RBAC markers (config/rbac/role.yaml: a ClusterRole,
//	                            a Role for its own namespace); cache.go limits the
//	                            cache to match
//	names.go, options.go,       the names and labels of what it creates, its options, and
//	setup.go                    Setup, which registers both reconcilers
//	rbac_heartbeat.go           its namespaced markers for the agents' heartbeat Role
//
// Both reconcilers work under a single key (the singleton NetworkCluster) and look at the
// whole cluster in every pass (one pass at a time; inside a pass, allocations run
// concurrently, which the blocks make safe): level-triggered, restart-safe, and with no
// state outside the API server. The admission policy that keeps each agent to its own NodeSubnet is created by
// the NetworkCluster reconciler with the agents (so an OLM install has it too).
package controllers
