package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// trace follows a packet from one pod to another through the mesh: on each node it asks the
// node's agent (`ovsmesh-agent trace`, run in the agent pod through the API server's exec,
// as `kubectl exec` does) what obr0 does with it, and goes on to the node the tunnel leads
// to, until the packet reaches the destination node's Linux bridge, is dropped, or has
// crossed more nodes than a mesh path can have.

// TraceHop is what one node's obr0 does with the packet (agent.TraceResult, mirrored here so
// the plugin does not import the agent).
type TraceHop struct {
	Node    string   `json:"node"`
	InPort  string   `json:"inPort"`
	Flow    string   `json:"flow"`
	Learned bool     `json:"learned"`
	Flooded bool     `json:"flooded"`
	Dropped bool     `json:"dropped"`
	Tunnels []string `json:"tunnels"`
	Local   []string `json:"local"`
	Notes   []string `json:"notes"`
	// Next is the node the packet goes on to (the tunnel to the destination's node when it
	// floods), empty at the end.
	Next string `json:"next,omitempty"`
	Raw  string `json:"raw"`
}

// TraceReport is `kubectl ovsmesh trace`'s result.
type TraceReport struct {
	From     string     `json:"from"`
	To       string     `json:"to"`
	FromIP   string     `json:"fromIP"`
	ToIP     string     `json:"toIP"`
	FromNode string     `json:"fromNode"`
	ToNode   string     `json:"toNode"`
	Hops     []TraceHop `json:"hops"`
	// Verdict: delivered, dropped, misrouted (reached another node's bridge), local (same
	// node: the Linux bridge connects them, OVS is not involved), or unknown.
	Verdict string `json:"verdict"`
	Why     string `json:"why"`
}

// execFunc runs command in a container of a pod and returns its stdout.
type execFunc func(ctx context.Context, pod *corev1.Pod, container string, command []string) (string, error)

// runTrace traces from pod "from" to pod "to" (NAMESPACE/NAME, or NAME in default).
func runTrace(ctx context.Context, c client.Reader, exec execFunc, namespace, from, to string) (TraceReport, error) {
	rep := TraceReport{From: from, To: to, Hops: []TraceHop{}, Verdict: "unknown"}
	src, err := getPod(ctx, c, from)
	if err != nil {
		return rep, err
	}
	dst, err := getPod(ctx, c, to)
	if err != nil {
		return rep, err
	}
	rep.FromIP, rep.ToIP, rep.FromNode, rep.ToNode = src.Status.PodIP, dst.Status.PodIP, src.Spec.NodeName, dst.Spec.NodeName
	if rep.FromIP == "" || rep.ToIP == "" {
		return rep, fmt.Errorf("both pods need an address (from %q, to %q)", rep.FromIP, rep.ToIP)
	}
	if rep.FromNode == rep.ToNode {
		rep.Verdict, rep.Why = "local", "both pods are on "+rep.FromNode+": its Linux bridge connects them; OVS is not involved"
		return rep, nil
	}
	var nc v1alpha1.NetworkCluster
	if err := c.Get(ctx, client.ObjectKey{Name: v1alpha1.NetworkClusterName}, &nc); err != nil {
		return rep, fmt.Errorf("reading the NetworkCluster: %w", err)
	}
	var subnets v1alpha1.NodeSubnetList
	if err := c.List(ctx, &subnets); err != nil {
		return rep, fmt.Errorf("listing NodeSubnets: %w", err)
	}
	byNode, byIP := map[string]v1alpha1.NodeSubnet{}, map[string]string{}
	for _, s := range subnets.Items {
		byNode[s.Spec.NodeName], byIP[s.Spec.NodeIP] = s, s.Spec.NodeName
	}
	srcSubnet, ok := byNode[rep.FromNode]
	if !ok {
		return rep, fmt.Errorf("node %s has no NodeSubnet: it is not in the mesh", rep.FromNode)
	}
	if _, ok := byNode[rep.ToNode]; !ok {
		return rep, fmt.Errorf("node %s has no NodeSubnet: it is not in the mesh", rep.ToNode)
	}
	ovsBridge, linuxBridge := nc.Spec.Bridges.OVSOf(), nc.Spec.Bridges.LinuxOf()
	tunnel := strings.ToLower(string(nc.Spec.Tunnel.TypeOf()))

	w := &tracer{exec: exec, c: c, namespace: namespace, rep: &rep, byNode: byNode, byIP: byIP,
		ovsBridge: ovsBridge, linuxBridge: linuxBridge, tunnel: tunnel, srcGateway: srcSubnet.Spec.Gateway,
		// A path through a spanning tree can cross every node once.
		maxHops: len(byNode) + 1}
	rep.Hops, rep.Verdict, rep.Why = w.walk(ctx, rep.FromNode, "", 0)
	return rep, nil
}

// tracer follows one packet from node to node.
type tracer struct {
	exec                           execFunc
	c                              client.Reader
	namespace                      string
	rep                            *TraceReport
	byNode                         map[string]v1alpha1.NodeSubnet
	byIP                           map[string]string
	ovsBridge, linuxBridge, tunnel string
	srcGateway                     string
	maxHops                        int
}

// walk asks node's agent what its obr0 does with the packet (arrived from the node at
// fromNodeIP; "" on the source node) and follows it: the path to delivery, or to where it
// ends, with the verdict. A learned MAC leaves by one tunnel. A flood leaves by every
// forwarding tunnel, and a copy whose far end spanning tree blocks is dropped there, as it
// should be: so every copy is followed, the destination's node first, and the first that is
// delivered is the answer (else the first copy's end).
func (w *tracer) walk(ctx context.Context, node, fromNodeIP string, depth int) ([]TraceHop, string, string) {
	if depth >= w.maxHops {
		return nil, "dropped", fmt.Sprintf("still not delivered after %d nodes: a forwarding loop?", w.maxHops)
	}
	agentPod, err := agentPodOn(ctx, w.c, w.namespace, node)
	if err != nil {
		return nil, "unknown", err.Error()
	}
	cmd := []string{agentBinary, "trace", "--ovs-bridge=" + w.ovsBridge, "--linux-bridge=" + w.linuxBridge, "--tunnel=" + w.tunnel,
		"--src-ip=" + w.rep.FromIP, "--dst-ip=" + w.rep.ToIP, "--src-gateway=" + w.srcGateway}
	if fromNodeIP != "" {
		cmd = append(cmd, "--from-node-ip="+fromNodeIP, "--node-ip="+w.byNode[node].Spec.NodeIP)
	}
	out, err := w.exec(ctx, agentPod, "agent", cmd)
	if err != nil {
		return nil, "unknown", fmt.Sprintf("tracing on %s (agent pod %s): %v", node, agentPod.Name, err)
	}
	h := TraceHop{Node: node}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		return nil, "unknown", fmt.Sprintf("the agent on %s answered %q: %v", node, strings.TrimSpace(out), err)
	}
	h.Node = node
	veth, _ := v1alpha1.VethNames(w.ovsBridge, w.linuxBridge)
	switch {
	case slices.Contains(h.Local, veth) && node == w.rep.ToNode:
		return []TraceHop{h}, "delivered", fmt.Sprintf("%s's %s hands it to %s, which bridges it to the pod", node, w.ovsBridge, w.linuxBridge)
	case h.Dropped:
		return []TraceHop{h}, "dropped", dropWhy(h)
	case len(h.Tunnels) == 0:
		return []TraceHop{h}, "misrouted", fmt.Sprintf("%s's %s delivers it to %v, not to %s", node, w.ovsBridge, h.Local, w.rep.ToNode)
	}
	var next []string // the nodes the copies reach, the destination's first
	for _, ip := range h.Tunnels {
		switch n := w.byIP[ip]; {
		case n == "":
		case n == w.rep.ToNode:
			next = slices.Insert(next, 0, n)
		default:
			next = append(next, n)
		}
	}
	if len(next) == 0 {
		return []TraceHop{h}, "misrouted", fmt.Sprintf("%s sends it to %v, which no NodeSubnet holds", node, h.Tunnels)
	}
	var first []TraceHop
	var firstVerdict, firstWhy string
	for i, n := range next {
		hop := h
		hop.Next = n
		rest, verdict, why := w.walk(ctx, n, w.byNode[node].Spec.NodeIP, depth+1)
		path := append([]TraceHop{hop}, rest...)
		if verdict == "delivered" {
			return path, verdict, why
		}
		if i == 0 {
			first, firstVerdict, firstWhy = path, verdict, why
		}
	}
	return first, firstVerdict, firstWhy
}

func dropWhy(h TraceHop) string {
	why := h.Node + " drops it"
	if len(h.Notes) > 0 {
		why += ": " + strings.Join(h.Notes, "; ")
	}
	return why
}

// getPod reads NAMESPACE/NAME (or NAME, in default).
func getPod(ctx context.Context, c client.Reader, ref string) (*corev1.Pod, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		ns, name = "default", ref
	}
	var p corev1.Pod
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	return &p, nil
}

// agentPodOn finds the running agent pod on node.
func agentPodOn(ctx context.Context, c client.Reader, namespace, node string) (*corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{labelName: agentName},
		client.MatchingFields{"spec.nodeName": node}); err != nil {
		return nil, fmt.Errorf("agent pods on %s in %s: %w", node, namespace, err)
	}
	for i := range pods.Items {
		if pods.Items[i].Status.Phase == corev1.PodRunning {
			return &pods.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no running agent pod on %s (namespace %s)", node, namespace)
}

// podExec is execFunc through the API server, as kubectl exec: WebSocket first, SPDY when
// the server cannot upgrade to it.
func podExec(cfg *rest.Config) (execFunc, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, pod *corev1.Pod, container string, command []string) (string, error) {
		req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, clientgoscheme.ParameterCodec)
		ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
		if err != nil {
			return "", err
		}
		spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
		if err != nil {
			return "", err
		}
		ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		if err != nil {
			return "", err
		}
		var out, errb bytes.Buffer
		if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errb}); err != nil {
			return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
		}
		return out.String(), nil
	}, nil
}

// WriteTrace renders rep for a person.
func WriteTrace(w io.Writer, rep TraceReport, color bool) {
	p := painter(color)
	fmt.Fprintf(w, "Trace %s (%s on %s) → %s (%s on %s)\n", rep.From, rep.FromIP, rep.FromNode, rep.To, rep.ToIP, rep.ToNode)
	for _, h := range rep.Hops {
		how := "learned"
		if h.Flooded {
			how = "flooded: MAC not learned yet"
		}
		fmt.Fprintf(w, "  %-12s in %-14s", h.Node, h.InPort)
		switch {
		case h.Next != "":
			fmt.Fprintf(w, " → tunnel to %s (%s)", h.Next, how)
		case len(h.Local) > 0:
			fmt.Fprintf(w, " → %s (%s)", strings.Join(h.Local, ", "), how)
		case h.Dropped:
			fmt.Fprintf(w, " → dropped")
		}
		if len(h.Notes) > 0 {
			fmt.Fprintf(w, "  [%s]", strings.Join(h.Notes, "; "))
		}
		fmt.Fprintln(w)
	}
	verdict := rep.Verdict
	switch rep.Verdict {
	case "delivered", "local":
		verdict = p.paint(good, verdict)
	default:
		verdict = p.paint(bad, verdict)
	}
	fmt.Fprintf(w, "Verdict: %s — %s\n", verdict, rep.Why)
}
