package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/hostnet"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// OVSSide is the OVS half of the node state. ovsside.go implements it on the ovs package's
// client; it is an interface only so the reconcile loop can be built before OVS is reachable
// (the agent dials lazily and reports OVSUnavailable instead of crash-looping).
type OVSSide interface {
	// Apply makes the bridge (with STP/RSTP and its timers configured before any tunnel
	// exists), its veth port and the whole tunnel mesh match s. The mesh is one transaction.
	// It returns how many OVSDB operations it committed: 0 when OVS already matched.
	Apply(ctx context.Context, s OVSState) (ops int, err error)
	// Ports reports every port of the bridge as OVS sees it (spanning-tree and BFD state,
	// protection, whether ovs-vswitchd has set it up); none when there is no bridge.
	Ports(ctx context.Context, bridge string) ([]ovs.PortState, error)
	// DeleteBridge removes the bridge with its ports if ovsmesh owns it; a missing bridge is
	// not an error. It returns the number of operations committed.
	DeleteBridge(ctx context.Context, bridge string) (ops int, err error)
	// VswitchdAlive returns nil when ovs-vswitchd answers (or when no probe is configured).
	// OVSDB alone cannot tell: its status columns keep what a dead ovs-vswitchd last wrote.
	VswitchdAlive(ctx context.Context) error
}

// Applier applies a NodeState to the node: host side, then OVS side, then the CNI config.
// The order matters: the veth must exist before OVS can add it as a port, and the CNI config
// (which tells the kubelet the network is ready) is written only once the data path is.
type Applier struct {
	Host       hostnet.Interface
	OVS        OVSSide
	CNIConfDir string
	// CNIBinDir is where the runtime finds the plugins: Apply writes no CNI config that names
	// a plugin missing there, and Cleanup removes those install-cni recorded there ("" =
	// neither).
	CNIBinDir string
	// CNIIPAMDataDir is host-local's dataDir in the CNI config ("" = its default).
	CNIIPAMDataDir string
	Log            logr.Logger
}

// Result is what one Apply did and saw.
type Result struct {
	HostChanges []string
	OVSOps      int
	CNIWritten  bool
	Tunnels     TunnelReport
	Duration    time.Duration
}

// Changed reports whether Apply changed anything on the node.
func (r Result) Changed() bool { return len(r.HostChanges) > 0 || r.OVSOps > 0 || r.CNIWritten }

// ReasonError carries the Ready condition reason of a failure.
type ReasonError struct {
	Reason string
	Err    error
}

func (e *ReasonError) Error() string { return e.Err.Error() }
func (e *ReasonError) Unwrap() error { return e.Err }

func withReason(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &ReasonError{Reason: reason, Err: err}
}

// ovsReason tells an ovsdb-server that is down or does not answer (OVSUnavailable) from
// one that refused what the agent asked (OVSError).
func ovsReason(err error) error {
	if errors.Is(err, ovs.ErrUnavailable) {
		return withReason(v1alpha1.ReasonOVSUnavailable, err)
	}
	return withReason(v1alpha1.ReasonOVSError, err)
}

// ReasonOf returns the condition reason for err.
func ReasonOf(err error) string {
	var re *ReasonError
	if errors.As(err, &re) {
		return re.Reason
	}
	return v1alpha1.ReasonHostError
}

// Apply makes the node match s. It is idempotent: on a node that already matches it changes
// nothing and commits zero OVSDB operations.
func (a *Applier) Apply(ctx context.Context, s NodeState) (Result, error) {
	start := time.Now()
	var r Result
	var err error
	r.HostChanges, err = hostnet.Apply(a.Host, s.Host)
	for _, c := range r.HostChanges {
		a.Log.Info("host changed", "change", c)
	}
	if err != nil {
		var ce *hostnet.ConflictError
		if errors.As(err, &ce) {
			return r, withReason(v1alpha1.ReasonHostConflict, err)
		}
		return r, withReason(v1alpha1.ReasonHostError, err)
	}

	if a.OVS == nil {
		return r, withReason(v1alpha1.ReasonOVSUnavailable, errors.New("not connected to ovsdb-server"))
	}
	if err := checkTunnelLimit(s.OVS); err != nil {
		return r, err
	}
	if s.OVS.VethIfindex, err = a.Host.LinkIndex(s.OVS.VethPort); err != nil {
		return r, withReason(v1alpha1.ReasonHostError, err)
	}
	s.OVS.VethRecreated = hostnet.VethCreated(r.HostChanges, s.Host.Veth)
	r.OVSOps, err = a.OVS.Apply(ctx, s.OVS)
	if r.OVSOps > 0 {
		a.Log.Info("OVS changed", "operations", r.OVSOps, "bridge", s.OVS.Bridge.Name, "tunnels", len(s.OVS.Tunnels))
	}
	if err != nil {
		return r, ovsReason(err)
	}
	// Before the CNI config, which tells the kubelet the network is ready.
	if err := a.OVS.VswitchdAlive(ctx); err != nil {
		return r, withReason(v1alpha1.ReasonVswitchdUnavailable, err)
	}

	conf, err := renderCNI(s.CNI, a.CNIIPAMDataDir)
	if err != nil {
		return r, withReason(v1alpha1.ReasonCNIConfigError, err)
	}
	if a.CNIBinDir != "" {
		missing, err := missingPlugins(a.CNIBinDir, conf)
		if err != nil {
			return r, withReason(v1alpha1.ReasonCNIConfigError, err)
		}
		if len(missing) > 0 {
			return r, withReason(v1alpha1.ReasonCNIConfigError, fmt.Errorf(
				"CNI plugins %v named by the config are not in %s, so every pod would fail: the agent pod's install-cni init container installs them", missing, a.CNIBinDir))
		}
	}
	if r.CNIWritten, err = writeFileAtomic(a.CNIConfDir, CNIConfFile, conf); err != nil {
		return r, withReason(v1alpha1.ReasonCNIConfigError, fmt.Errorf("writing CNI config in %s: %w", a.CNIConfDir, err))
	}
	if r.CNIWritten {
		a.Log.Info("CNI config written", "dir", a.CNIConfDir, "file", CNIConfFile, "mtu", s.CNI.MTU)
	}

	ports, err := a.OVS.Ports(ctx, s.OVS.Bridge.Name)
	if err != nil {
		return r, ovsReason(err)
	}
	r.Tunnels = tunnelReport(s.OVS, ports)
	r.Duration = time.Since(start)
	return r, nil
}
