package controllers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	cniconfig "github.com/ovsmesh/ovsmesh/cni/config"
)

// The agent image contract (what the DaemonSet below expects of spec.agentImage):
//
//	/usr/local/bin/ovsmesh-agent              the agent: `run` (default) and `cleanup`
//	/usr/local/bin/ovsmesh-agent install-cni  copies the CNI plugins shipped in the image under
//	                                          /opt/ovsmesh/cni/bin into --cni-bin-dir: `ovsmesh`
//	                                          always (it is versioned with the agent) and
//	                                          `host-local` and `portmap` only when the node has none
//
// The init container installs before the agent starts, so the CNI config the agent writes
// never names a plugin binary that is missing on the node.
const (
	AgentBinary        = "/usr/local/bin/ovsmesh-agent"
	agentCNIBinHostDir = "/opt/cni/bin"
	agentCNIBinInitDir = "/host/opt/cni/bin"
)

// The agent's configuration is the NetworkCluster itself, which every agent watches (RBAC
// below): tunnel type, STP timers, MTU, masquerade... change live without restarting pods
// (the tunnel-type switch must not drop the bridges). Only what the pod itself depends on is
// put into the DaemonSet: the image and the node selector.

func ownerRef(nc *v1alpha1.NetworkCluster) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).WithKind("NetworkCluster").
		WithName(nc.Name).WithUID(nc.UID).
		WithController(true).WithBlockOwnerDeletion(true)
}

func agentLabels() map[string]string {
	l := managedLabels()
	l[LabelName] = AgentName
	l[LabelComponent] = "agent"
	return l
}

// agentSelector is the DaemonSet's selector: immutable, so it never depends on the spec.
func agentSelector() map[string]string { return map[string]string{LabelName: AgentName} }

// agentServiceAccount is the identity of the agent pods. The admission policy
// (agent_policy.go) restricts it to its own node's NodeSubnet status.
func agentServiceAccount(nc *v1alpha1.NetworkCluster, namespace string) *corev1ac.ServiceAccountApplyConfiguration {
	return corev1ac.ServiceAccount(AgentName, namespace).
		WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc))
}

// agentClusterRole is least privilege for an agent: read the configuration, the NodeSubnets
// (its own and its peers') and Nodes; write NodeSubnet status and its Node's
// NetworkUnavailable condition only. Which NodeSubnet it may
// write is narrowed to its own node by the ValidatingAdmissionPolicy, as RBAC cannot say it.
func agentClusterRole(nc *v1alpha1.NetworkCluster) *rbacv1ac.ClusterRoleApplyConfiguration {
	return rbacv1ac.ClusterRole(AgentName).
		WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc)).
		WithRules(
			rbacv1ac.PolicyRule().WithAPIGroups(v1alpha1.GroupVersion.Group).
				WithResources("networkclusters", "nodesubnets").WithVerbs("get", "list", "watch"),
			rbacv1ac.PolicyRule().WithAPIGroups(v1alpha1.GroupVersion.Group).
				WithResources("nodesubnets/status").WithVerbs("update", "patch"),
			rbacv1ac.PolicyRule().WithAPIGroups("").
				WithResources("nodes").WithVerbs("get", "list", "watch"),
			// The NetworkUnavailable condition of its own Node (agent/nodecondition.go; the
			// admission policy holds it to its own Node and that condition).
			rbacv1ac.PolicyRule().WithAPIGroups("").
				WithResources("nodes/status").WithVerbs("patch"),
			// Events about its NodeSubnet (agent/events.go).
			rbacv1ac.PolicyRule().WithAPIGroups("events.k8s.io").
				WithResources("events").WithVerbs("create", "patch"),
			// Its metrics endpoint asks the API server who a scraper is and whether it may.
			rbacv1ac.PolicyRule().WithAPIGroups("authentication.k8s.io").
				WithResources("tokenreviews").WithVerbs("create"),
			rbacv1ac.PolicyRule().WithAPIGroups("authorization.k8s.io").
				WithResources("subjectaccessreviews").WithVerbs("create"),
		)
}

func agentClusterRoleBinding(nc *v1alpha1.NetworkCluster, namespace string) *rbacv1ac.ClusterRoleBindingApplyConfiguration {
	return rbacv1ac.ClusterRoleBinding(AgentName).
		WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(AgentName)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.ServiceAccountKind).WithName(AgentName).WithNamespace(namespace))
}

// hostDir is a hostPath volume created on the node if missing (a fresh node may have no
// /etc/cni/net.d yet; the agent is what fills it).
func hostDir(name, path string) *corev1ac.VolumeApplyConfiguration {
	return corev1ac.Volume().WithName(name).
		WithHostPath(corev1ac.HostPathVolumeSource().WithPath(path).WithType(corev1.HostPathDirectoryOrCreate))
}

func mount(name, path string) *corev1ac.VolumeMountApplyConfiguration {
	return corev1ac.VolumeMount().WithName(name).WithMountPath(path)
}

// agentDaemonSet runs one agent per selected node, with its metrics on metricsPort of every
// node (0: none).
func agentDaemonSet(nc *v1alpha1.NetworkCluster, namespace string, metricsPort int) *appsv1ac.DaemonSetApplyConfiguration {
	nodeSel := map[string]string{corev1.LabelOSStable: "linux"}
	for k, v := range nc.Spec.NodeSelector {
		nodeSel[k] = v
	}
	image := nc.Spec.AgentImageOf()

	install := corev1ac.Container().WithName("install-cni").WithImage(image).
		WithCommand(AgentBinary, "install-cni", "--cni-bin-dir="+agentCNIBinInitDir).
		WithVolumeMounts(mount("cni-bin", agentCNIBinInitDir))

	// Metrics over HTTPS for authorized scrapers only (internal/metricsauth): on by default,
	// on a port of every node (hostNetwork). The agent does not start when its port is taken,
	// so a cluster whose nodes already use it moves it (or turns it off) with the operator's
	// --agent-metrics-port. JSON logs: what a cluster's log pipeline parses (the demo and
	// tests read console).
	run := []string{AgentBinary, "run", "--metrics-bind-address=0", "--log-encoding=json"}
	agent := corev1ac.Container().WithName("agent").WithImage(image)
	if metricsPort > 0 {
		run[2] = fmt.Sprintf("--metrics-bind-address=:%d", metricsPort)
		agent.WithPorts(corev1ac.ContainerPort().WithName("metrics").WithContainerPort(int32(metricsPort)).WithProtocol(corev1.ProtocolTCP))
	}
	agent.WithCommand(run...).
		WithEnv(corev1ac.EnvVar().WithName("NODE_NAME").WithValueFrom(
			corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath("spec.nodeName"))),
			// Where the agent renews its heartbeat Lease (agent/heartbeat.go).
			corev1ac.EnvVar().WithName("POD_NAMESPACE").WithValueFrom(
				corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath("metadata.namespace")))).
		// Privileged: the agent writes sysctls (net.ipv4.ip_forward) through /proc/sys,
		// which the runtime mounts read-only for unprivileged containers. The capabilities
		// list documents what it uses: netlink links/routes/nftables (NET_ADMIN), raw
		// sockets for the bridges (NET_RAW) and network namespaces (SYS_ADMIN).
		WithSecurityContext(corev1ac.SecurityContext().WithPrivileged(true).
			WithCapabilities(corev1ac.Capabilities().WithAdd("NET_ADMIN", "NET_RAW", "SYS_ADMIN"))).
		WithVolumeMounts(
			mount("ovs-run", "/var/run/openvswitch"),
			mount("cni-conf", cniconfig.DefaultConfDir),
			mount("cni-bin", agentCNIBinHostDir),
			mount("netns", "/run/netns").WithMountPropagation(corev1.MountPropagationHostToContainer),
		).
		WithResources(corev1ac.ResourceRequirements().WithRequests(corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("50m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		}))

	pod := corev1ac.PodSpec().
		WithServiceAccountName(AgentName).
		WithHostNetwork(true).
		WithDNSPolicy(corev1.DNSClusterFirstWithHostNet).
		// The pod network depends on this pod: it must be scheduled before anything else
		// and never be evicted for ordinary workloads.
		WithPriorityClassName("system-node-critical").
		// Every node of the mesh needs its agent, whatever it is tainted with.
		WithTolerations(corev1ac.Toleration().WithOperator(corev1.TolerationOpExists)).
		WithNodeSelector(nodeSel).
		WithTerminationGracePeriodSeconds(30).
		WithInitContainers(install).
		WithContainers(agent).
		WithVolumes(
			hostDir("ovs-run", "/var/run/openvswitch"),
			hostDir("cni-conf", cniconfig.DefaultConfDir),
			hostDir("cni-bin", agentCNIBinHostDir),
			hostDir("netns", "/run/netns"),
		)

	return appsv1ac.DaemonSet(AgentName, namespace).
		WithLabels(agentLabels()).WithOwnerReferences(ownerRef(nc)).
		WithSpec(appsv1ac.DaemonSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(agentSelector())).
			WithUpdateStrategy(appsv1ac.DaemonSetUpdateStrategy().
				WithType(appsv1.RollingUpdateDaemonSetStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDaemonSet().WithMaxUnavailable(intstr.FromInt32(1)))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(agentLabels()).
				WithSpec(pod)))
}
