package agent

import (
	"context"
	"reflect"
	"slices"
	"sync"

	"github.com/ovsmesh/ovsmesh/internal/fakecalls"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// FakeOVS is an in-memory OVSSide, and the OVSConnector that hands it out, for tests that
// run the Applier, the Cleaner or the Reconciler without ovsdb-server (the OVS half of what
// hostnet.Fake is for the host). It remembers the last OVSState applied per bridge, so that
// Apply follows OVSSide's contract of 0 operations when OVS already matches; it records
// every call in order and can make any method fail (ovs.ErrUnavailable, or an error wrapping
// it, is what an ovsdb-server that is down gives).
//
// It lives in package agent, not a test-only package, so that the agent's own tests (in
// package agent) can use it as well as other packages'; a binary that never refers to it
// links none of it.
//
// Set the exported fields up before handing it to the code under test (or from OnCall); its
// methods are safe for concurrent use among themselves.
type FakeOVS struct {
	mu sync.Mutex

	// Bridges is the last state applied to each bridge that exists.
	Bridges map[string]OVSState
	// PortStates is what Ports reports for a bridge that exists (none when unset).
	PortStates map[string][]ovs.PortState
	// Fail makes the method of that name ("Connect", "Apply", "Ports", "DeleteBridge",
	// "VswitchdAlive") return the error without changing anything.
	Fail map[string]error
	// OnCall, when set, is called with the method name at the start of every call, before
	// anything is read or changed, without the FakeOVS's lock held.
	OnCall func(method string)

	// The calls received, in order: Calls, Methods, ResetCalls.
	fakecalls.Log[FakeOVSCall]
}

// FakeOVSCall is one recorded call: the method, the bridge it named ("" for Connect and
// VswitchdAlive), and for Apply the state.
type FakeOVSCall struct {
	Method string
	Bridge string
	State  OVSState
}

// MethodName implements fakecalls.Call.
func (c FakeOVSCall) MethodName() string { return c.Method }

var (
	_ OVSSide      = (*FakeOVS)(nil)
	_ OVSConnector = (*FakeOVS)(nil)
)

// NewFakeOVS returns a FakeOVS with no bridge.
func NewFakeOVS() *FakeOVS {
	return &FakeOVS{Bridges: map[string]OVSState{}, PortStates: map[string][]ovs.PortState{}, Fail: map[string]error{}}
}

// begin records a call, runs OnCall and returns the injected error, if any. On nil the
// caller holds f.mu and must release it.
func (f *FakeOVS) begin(c FakeOVSCall) error {
	f.mu.Lock()
	f.Record(c)
	hook := f.OnCall
	f.mu.Unlock()
	if hook != nil {
		hook(c.Method)
	}
	f.mu.Lock()
	if err := f.Fail[c.Method]; err != nil {
		f.mu.Unlock()
		return err
	}
	return nil
}

// Connect follows OVSConnector.Connect: it returns the FakeOVS itself.
func (f *FakeOVS) Connect(ctx context.Context) (OVSSide, error) {
	if err := f.begin(FakeOVSCall{Method: "Connect"}); err != nil {
		return nil, err
	}
	f.mu.Unlock()
	return f, nil
}

// Apply follows OVSSide.Apply: 0 operations when s is what the bridge already has, else s
// becomes the bridge's state. The count of a change is not the real one (which depends on
// the ovs package's transactions): 1 for the bridge and 1 for each peer when the bridge is
// new, 1 for any other change. VethRecreated is a request (plug the port in again), not
// state: a recreated veth is always a change.
func (f *FakeOVS) Apply(ctx context.Context, s OVSState) (int, error) {
	if err := f.begin(FakeOVSCall{Method: "Apply", Bridge: s.Bridge.Name, State: s}); err != nil {
		return 0, err
	}
	defer f.mu.Unlock()
	if f.Bridges == nil {
		f.Bridges = map[string]OVSState{}
	}
	cur, exists := f.Bridges[s.Bridge.Name]
	kept := s
	kept.VethRecreated = false
	f.Bridges[s.Bridge.Name] = kept
	switch {
	case !exists:
		return 1 + len(s.Tunnels), nil
	case s.VethRecreated || !reflect.DeepEqual(cur, kept):
		return 1, nil
	}
	return 0, nil
}

// Ports follows OVSSide.Ports: PortStates[bridge] while the bridge exists, none when not.
func (f *FakeOVS) Ports(ctx context.Context, bridge string) ([]ovs.PortState, error) {
	if err := f.begin(FakeOVSCall{Method: "Ports", Bridge: bridge}); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if _, ok := f.Bridges[bridge]; !ok {
		return nil, nil
	}
	return slices.Clone(f.PortStates[bridge]), nil
}

// DeleteBridge follows OVSSide.DeleteBridge: 1 operation when the bridge existed, 0 (no
// error) when not.
func (f *FakeOVS) DeleteBridge(ctx context.Context, bridge string) (int, error) {
	if err := f.begin(FakeOVSCall{Method: "DeleteBridge", Bridge: bridge}); err != nil {
		return 0, err
	}
	defer f.mu.Unlock()
	if _, ok := f.Bridges[bridge]; !ok {
		return 0, nil
	}
	delete(f.Bridges, bridge)
	return 1, nil
}

// VswitchdAlive follows OVSSide.VswitchdAlive: nil unless Fail["VswitchdAlive"] is set.
func (f *FakeOVS) VswitchdAlive(ctx context.Context) error {
	if err := f.begin(FakeOVSCall{Method: "VswitchdAlive"}); err != nil {
		return err
	}
	f.mu.Unlock()
	return nil
}
