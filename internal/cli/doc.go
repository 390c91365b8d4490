// Package cli is the kubectl ovsmesh plugin (cmd/kubectl-ovsmesh). It is split in three so
// that what the user sees can be tested without a cluster:
//
//   - gather*.go read the API (NetworkCluster, NodeSubnets, heartbeat Leases, agent pods,
//     Events) through a controller-runtime client, and note what could not be read instead
//     of failing: a user may see the cluster-scoped objects but not the operator namespace;
//   - build*.go turn those objects into a report (report.go), pure functions of the objects
//     and the time, which is also the -o json document;
//   - text*.go render a report for a person, with colour only on a terminal.
//
// Everything comes from the API: the plugin runs nothing on the nodes and shells out to
// nothing, so it shows what the agents and the operator published, no more.
package cli
