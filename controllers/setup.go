package controllers

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Setup registers the IPAM (NodeSubnet) and NetworkCluster reconcilers with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts = opts.withDefaults()
	ipam := &IPAMReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("ovsmesh-ipam"),
		Options:   opts,
	}
	if err := ipam.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the NodeSubnet reconciler: %w", err)
	}
	nc := &NetworkClusterReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("ovsmesh-operator"),
		Options:   opts,
	}
	if err := nc.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the NetworkCluster reconciler: %w", err)
	}
	return nil
}
