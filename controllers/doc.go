// Package controllers holds the ovsmesh operator's reconcilers: subnet IPAM (one NodeSubnet per
// selected Node), the NetworkCluster reconciler (agent DaemonSet, its RBAC, status aggregation)
// and uninstall orchestration behind a finalizer.
package controllers
