package cli

// Names the agent and the operator define in packages the plugin does not import: agent and
// controllers pull in OVS, netlink and the manager, none of which a kubectl plugin needs.
// consts_test.go holds each copy equal to its original.
const (
	// agent.ReasonApplied and the Ready reasons that say how far the agent's pass got.
	reasonApplied             = "Applied"
	reasonOVSUnavailable      = "OVSUnavailable"
	reasonVswitchdUnavailable = "VswitchdUnavailable"
	reasonOVSError            = "OVSError"
	reasonCNIConfigError      = "CNIConfigError"
	reasonInvalidConfig       = "InvalidConfig"

	// agent.EventDriftRepaired: the Event the agent records for each drift repair.
	eventDriftRepaired = "DriftRepaired"

	// agent.OverheadGRE and agent.OverheadVXLAN: the bytes a tunnel adds to a frame.
	overheadGRE   = 42
	overheadVXLAN = 50

	// controllers.DefaultNamespace, controllers.LabelName and controllers.AgentName: where the
	// agent pods and the heartbeat Leases are, and the label on the agent pods.
	defaultNamespace = "ovsmesh-system"
	labelName        = "app.kubernetes.io/name"
	agentName        = "ovsmesh-agent"

	// controllers.AgentBinary: the agent in its image, which `trace` runs in the agent pod.
	agentBinary = "/usr/local/bin/ovsmesh-agent"
)
