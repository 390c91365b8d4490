package controllers

import "time"

// Options configure the reconcilers.
type Options struct {
	// Namespace holds the agent DaemonSet and ServiceAccount and the subnet claims: the
	// operator's own namespace.
	Namespace string
	// CleanupTimeout bounds the wait for agents' CleanedUp reports on uninstall.
	CleanupTimeout time.Duration
	// ClaimGracePeriod: see DefaultClaimGracePeriod.
	ClaimGracePeriod time.Duration
	// AllocationWorkers: see DefaultAllocationWorkers.
	AllocationWorkers int
	// AgentMetricsPort is the agents' metrics port on every node: 0 means
	// DefaultAgentMetricsPort, a negative value none.
	AgentMetricsPort int
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = DefaultCleanupTimeout
	}
	if o.ClaimGracePeriod <= 0 {
		o.ClaimGracePeriod = DefaultClaimGracePeriod
	}
	if o.AllocationWorkers <= 0 {
		o.AllocationWorkers = DefaultAllocationWorkers
	}
	if o.AgentMetricsPort == 0 {
		o.AgentMetricsPort = DefaultAgentMetricsPort
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
