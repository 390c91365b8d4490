// Package harness runs a whole ovsmesh cluster on one machine, for the demo command and the
// end-to-end tests:
//
//   - a real etcd + kube-apiserver (envtest) on the root namespace's loopback;
//   - N "nodes", each a network namespace joined to an underlay Linux bridge (in a namespace of
//     its own), with its own ovsdb-server and ovs-vswitchd (userspace datapath: this kernel has
//     no OVS module and no GRE), its underlay address on an OVS bridge br-phy (userspace
//     tunnels need that), a Node object, and a local API forwarder on 127.0.0.1 inside the
//     node namespace — the local API load balancer real clusters run on nodes;
//   - the operator, and one agent process per node running inside that node's namespace.
//
// There is no kubelet and no container runtime: the harness plays their part. It starts the
// agent processes the operator's DaemonSet describes, and it calls the CNI plugin through
// libcni to attach "pods" (network namespaces) to kbr0. That makes it fast, which the e2e
// fault tests and the benchmarks need; the same product on real kubelets, containerd and
// kube-proxy is internal/kubenodes (the demo, test/realnode).
//
// Every name carries a per-run prefix and everything is removed on Close, on failure and on
// Ctrl-C. Traffic stays inside the namespaces the harness made.
package harness
