package cli

// Names the agent and the operator define in packages the plugin does not import: agent and
// controllers pull in OVS, netlink and the manager, none of which a kubectl plugin needs.
// (The Ready reasons and the tunnel overheads are the API's own: v1alpha1.)
// consts_test.go holds each copy equal to its original.
const (
	// agent.EventDriftRepaired: the Event the agent records for each drift repair.
	eventDriftRepaired = "DriftRepaired"

	// controllers.DefaultNamespace, controllers.LabelName and controllers.AgentName: where the
	// agent pods and the heartbeat Leases are, and the label on the agent pods.
	defaultNamespace = "ovsmesh-system"
	labelName        = "app.kubernetes.io/name"
	agentName        = "ovsmesh-agent"

	// controllers.AgentBinary: the agent in its image, which `trace` runs in the agent pod.
	agentBinary = "/usr/local/bin/ovsmesh-agent"
)
