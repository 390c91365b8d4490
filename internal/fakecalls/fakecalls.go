// Package fakecalls records the calls a fake receives, for the fakes beside the project's
// interfaces (hostnet.Fake, agent.FakeOVS): one recorder instead of one per fake.
package fakecalls

import (
	"slices"
	"sync"
)

// Call is one recorded call: it names its method.
type Call interface{ MethodName() string }

// Log holds the calls in the order they were made; safe for concurrent use. Embedded in a
// fake, it gives the fake Calls, Methods and ResetCalls.
type Log[C Call] struct {
	mu    sync.Mutex
	calls []C
}

// Record appends c.
func (l *Log[C]) Record(c C) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// Calls returns the calls made so far, in order.
func (l *Log[C]) Calls() []C {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// Methods returns the names of the calls made so far, in order.
func (l *Log[C]) Methods() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.calls))
	for i, c := range l.calls {
		out[i] = c.MethodName()
	}
	return out
}

// ResetCalls forgets the calls recorded so far (whatever the fake models stays).
func (l *Log[C]) ResetCalls() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = nil
}
