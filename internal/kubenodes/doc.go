// Package kubenodes runs a real Kubernetes cluster on one machine, for the demo and the
// real-node end-to-end tests: ovsmesh installed and run exactly as on a cluster, with no part
// of Kubernetes played by the test bed.
//
//   - a control plane in the root network namespace: etcd, kube-apiserver (serving on the
//     underlay bridge, advertised there, so the `kubernetes` Service has a real endpoint),
//     kube-controller-manager and kube-scheduler, with certificates made per run;
//   - N nodes, each its own network namespace on that bridge, its own mount and UTS
//     namespace (private /run, /etc/cni/net.d, /opt/cni/bin, /var/lib/kubelet,
//     /var/lib/containerd, /var/run/openvswitch, so hostPath volumes resolve per node), its
//     own OVS (ovsdb-server + ovs-vswitchd, userspace datapath, the node address on br-phy),
//     containerd, kubelet (its own cgroup root) and kube-proxy (nftables);
//   - the images `make images` builds, imported into every node's containerd: nothing is
//     pulled.
//
// ovsmesh is then installed as a user installs it (kubectl apply -k config/default, then a
// NetworkCluster): the operator runs as a Deployment pod, the agents as DaemonSet pods, and
// containerd calls the CNI plugin for every pod.
//
// The recipe's facts (flags, the order of mounts, this machine's pitfalls: cgroup v1,
// no CAP_SYS_RESOURCE, global sysctls the kubelet would rewrite) are in
// ../shared/design/kubelet-nodes. Everything is removed on Close, on failure and on Ctrl-C:
// processes (by cgroup, mount namespace and network namespace), cgroups, namespaces, links
// and the run directory. Nothing is mounted in the root mount namespace but `ip netns add`'s
// /run/netns entries; traffic stays on the bridge and namespaces the cluster made.
package kubenodes
