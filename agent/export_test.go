package agent

// Hooks for the tests, kept out of the agent's binary.

// LastResult returns the result of the last pass's apply.
func (r *Reconciler) LastResult() (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Result, r.last.Err
}
