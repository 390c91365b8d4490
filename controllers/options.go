package controllers

import "time"

// Options configure the reconcilers.
type Options struct {
	// Namespace holds the agent DaemonSet and ServiceAccount and the subnet blocks: the
	// operator's own namespace.
	Namespace string
	// CleanupTimeout bounds the wait for agents' CleanedUp reports on uninstall.
	CleanupTimeout time.Duration
	// BlockLeaseDuration: see DefaultBlockLeaseDuration.
	BlockLeaseDuration time.Duration
	// Identity names this allocator in the blocks it holds (blocks.go); empty means
	// NewAllocatorIdentity(). Unique per process.
	Identity string
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
	if o.BlockLeaseDuration <= 0 {
		o.BlockLeaseDuration = DefaultBlockLeaseDuration
	}
	if o.Identity == "" {
		o.Identity = NewAllocatorIdentity()
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
