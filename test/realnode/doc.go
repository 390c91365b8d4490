// Package realnode tests ovsmesh installed on real Kubernetes nodes (internal/kubenodes):
// kubelets and containerd in namespaces of this machine, the operator a Deployment pod, the
// agents DaemonSet pods, every pod's network set up by containerd calling the CNI plugin.
package realnode
