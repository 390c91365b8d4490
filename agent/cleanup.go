package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-logr/logr"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/hostnet"
)

// Cleaner removes ovsmesh's data path from a node. It is the one way that happens: a
// teardown request (NodeSubnet spec.teardown), a node that leaves the mesh, the cleanup at
// shutdown and the cleanup subcommand all call Cleanup.
type Cleaner struct {
	Host hostnet.Interface
	// OVS is dialled for the bridge; when it cannot be, the host side is still cleaned and
	// the error says the bridge is left.
	OVS        OVSConnector
	CNIConfDir string
	// CNIBinDir is where install-cni recorded the plugins it installed; they are removed
	// only withPlugins ("" = never).
	CNIBinDir string
	Log       logr.Logger
}

// Cleanup removes the data path named by t, and the plugins install-cni installed when
// withPlugins (the agent pod is not coming back; a node that may rejoin keeps them).
func (c Cleaner) Cleanup(ctx context.Context, t CleanupTarget, withPlugins bool) ([]string, error) {
	var side OVSSide
	if c.OVS != nil {
		var err error
		if side, err = c.OVS.Connect(ctx); err != nil {
			c.Log.Error(err, "OVS not reachable: the OVS bridge stays; the host side is still cleaned")
		}
	}
	a := Applier{Host: c.Host, OVS: side, CNIConfDir: c.CNIConfDir, Log: c.Log}
	if withPlugins {
		a.CNIBinDir = c.CNIBinDir
	}
	return a.Cleanup(ctx, t)
}

// CleanupTarget names what Cleanup removes.
type CleanupTarget struct {
	OVSBridge   string
	Host        hostnet.Names
	CNIConfFile string // file name inside the Applier's CNIConfDir
}

// TargetForSpec returns the cleanup target for a NetworkCluster spec: its bridge names and
// cluster route.
func TargetForSpec(spec v1alpha1.NetworkClusterSpec) CleanupTarget {
	t := TargetFor(spec.Bridges.OVSOf(), spec.Bridges.LinuxOf())
	if cidr, err := parsePrefix(spec.ClusterCIDROf()); err == nil {
		t.Host.RouteDst = cidr
	}
	return t
}

// TargetFor returns the cleanup target for the given bridge names alone.
func TargetFor(ovsBridge, linuxBridge string) CleanupTarget {
	v, p := VethNames(ovsBridge, linuxBridge)
	return CleanupTarget{OVSBridge: ovsBridge, Host: hostnet.Names{Bridge: linuxBridge, Veth: v, VethPeer: p},
		CNIConfFile: CNIConfFile}
}

// Cleanup removes everything ovsmesh put on the node: first the CNI config (so no new pod is
// wired to a data path that is going away), then the OVS bridge, then the host side (veth,
// route, bridge, masquerade table). It is idempotent and tries every step even when one
// fails, returning all errors. With no OVS connection (a.OVS == nil) the bridge is left and
// an error says so.
func (a *Applier) Cleanup(ctx context.Context, t CleanupTarget) ([]string, error) {
	var ch []string
	var errs []error
	if removed, err := removeFile(a.CNIConfDir, t.CNIConfFile); err != nil {
		errs = append(errs, fmt.Errorf("removing CNI config: %w", err))
	} else if removed {
		ch = append(ch, "removed "+t.CNIConfFile)
	}
	// The plugins go after the config that names them: no runtime is sent to a missing binary.
	if removed, err := removeInstalledPlugins(a.CNIBinDir); err != nil {
		errs = append(errs, err)
	} else {
		ch = append(ch, removed...)
	}
	if a.OVS == nil {
		errs = append(errs, withReason(v1alpha1.ReasonOVSUnavailable, fmt.Errorf("not connected to ovsdb-server: %s not removed", t.OVSBridge)))
	} else if n, err := a.OVS.DeleteBridge(ctx, t.OVSBridge); err != nil {
		errs = append(errs, fmt.Errorf("deleting OVS bridge %s: %w", t.OVSBridge, err))
	} else if n > 0 {
		ch = append(ch, "deleted OVS bridge "+t.OVSBridge)
	}
	hc, err := a.Host.Cleanup(t.Host)
	ch = append(ch, hc...)
	if err != nil {
		errs = append(errs, err)
	}
	for _, c := range ch {
		a.Log.Info("cleanup", "change", c)
	}
	return ch, errors.Join(errs...)
}
