// Package bench holds ovsmesh's benchmarks. Every figure is a ratio against a reference
// measured in the same run on the same machine (the machine is shared and noisy; a ratio
// of two things measured side by side holds where an absolute number does not):
//
//   - IPAM at scale (ipam.go): Nodes created in a real API server until every one has its
//     NodeSubnet, against kube-controller-manager's node IPAM setting node.spec.podCIDR.
//   - OVS programming (ovsprog.go): 1,000 tunnel peers into a real ovsdb-server with
//     SyncTunnels (one transaction) against a loop of ovs-vsctl add-port and one batched
//     ovs-vsctl; and the agent's RSS with 1,000 peers (agentrss.go).
//   - Convergence (converge.go): node join → tunnels on every node, and node join → first
//     pod-to-pod ping under STP and RSTP, in the netns cluster of internal/harness.
//   - CNI latency (cni.go): ADD/DEL of the ovsmesh plugin against the reference bridge +
//     host-local plugins, interleaved.
//   - Data path (datapath.go): iperf3 pod→pod over GRE and VXLAN against node→node through
//     the same OVS and against the raw underlay.
//
// Everything is real (ovsdb-server, ovs-vswitchd, etcd, kube-apiserver,
// kube-controller-manager, CNI binaries, network namespaces), exactly as in the tests; like
// the tests, the benchmarks exec tools to set up and to inspect, and remove everything they
// create (namespaces, processes by PID, temp dirs) also on failure.
//
// The full-size runs are `make bench` (cmd/ovsmesh-bench); smoke_test.go runs each at a
// small size in the ordinary test run so that none of them rots.
package bench
