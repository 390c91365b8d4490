package main

import ctrl "sigs.k8s.io/controller-runtime"

// setupControllers registers the reconcilers of controllers/ with the manager.
func setupControllers(mgr ctrl.Manager) error {
	_ = mgr
	return nil
}
