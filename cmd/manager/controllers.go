package main

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ovsmesh/ovsmesh/controllers"
)

// setupControllers registers the reconcilers of controllers/ with the manager.
func setupControllers(mgr ctrl.Manager, opts controllers.Options) error {
	return controllers.Setup(mgr, opts)
}
