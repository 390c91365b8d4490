package agent

import "github.com/ovsmesh/ovsmesh/ovs"

// Hooks for the tests, kept out of the agent's binary.

// NewOVSSide wraps a connected ovs.Client, without an ovs-vswitchd liveness probe.
func NewOVSSide(c *ovs.Client) OVSSide { return &ovsSide{c: c} }

// LastResult returns the result of the last pass's apply.
func (r *Reconciler) LastResult() (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Result, r.last.Err
}
