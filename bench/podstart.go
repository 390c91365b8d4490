package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ovsmesh/ovsmesh/internal/kubenodes"
	"github.com/ovsmesh/ovsmesh/internal/proc"
)

// PodStartOptions sizes the pod start benchmark.
type PodStartOptions struct {
	Nodes int // real nodes (default 3)
	Pods  int // pods per side, created one after another
}

// PodStartResult holds per-pod create → Running-with-an-address latencies on the same real
// nodes, first with the reference bridge + host-local conflist, then with ovsmesh installed,
// and how long each network took from being configured to every node Ready.
type PodStartResult struct {
	Nodes, Pods               int
	Ours, Ref                 []time.Duration
	OursNetReady, RefNetReady time.Duration
}

// Figures: pod start p50 and p99 (target ≤ 1.0×, issue 13), and the network's time to every
// node Ready, reported beside the reference's (a conflist file appearing) with no target:
// ovsmesh's includes the operator's allocation, the agents' programming and spanning tree.
func (r PodStartResult) Figures() []Figure {
	var out []Figure
	for _, q := range []float64{50, 99} {
		o, rf := Percentile(r.Ours, q), Percentile(r.Ref, q)
		out = append(out, AtMost(fmt.Sprintf("pod create → Running with an IP p%g, %d pods on %d real nodes: ovsmesh vs bridge+host-local", q, r.Pods, r.Nodes),
			ms(o), ms(rf), DurRatio(o, rf), 1.0))
	}
	return append(out, Reported(fmt.Sprintf("network configured → all %d nodes Ready: NetworkCluster applied vs reference conflist written", r.Nodes),
		ms(r.OursNetReady), ms(r.RefNetReady), DurRatio(r.OursNetReady, r.RefNetReady),
		"ovsmesh's includes subnet allocation, the agents' programming and STP (short timers)"))
}

// PodStart runs the benchmark on a real-node cluster of its own.
func PodStart(ctx context.Context, e *Env, o PodStartOptions) (PodStartResult, error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	r := PodStartResult{Nodes: o.Nodes, Pods: o.Pods}
	c, err := kubenodes.Start(ctx, kubenodes.Options{Nodes: o.Nodes, Out: e.Log})
	if err != nil {
		return r, err
	}
	defer c.Close()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return r, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return r, err
	}

	// The reference: Debian's bridge, host-local and portmap, a conflist per node.
	t0 := time.Now()
	for _, n := range c.Nodes {
		if err := n.InstallReferenceCNI(); err != nil {
			return r, err
		}
	}
	if err := c.WaitNodesReady(ctx, time.Minute); err != nil {
		return r, fmt.Errorf("reference: %w", err)
	}
	r.RefNetReady = time.Since(t0)
	if r.Ref, err = startPods(ctx, cs, "ref", o.Pods); err != nil {
		return r, fmt.Errorf("reference: %w", err)
	}
	// Back to a node with no pod network: the reference's files and bridge go.
	for _, n := range c.Nodes {
		n.RemoveReferenceCNI(ctx)
	}
	if err := proc.WaitFor(ctx, time.Minute, 250*time.Millisecond, func() bool {
		s, err := c.NodeStatus(ctx)
		if err != nil {
			return false
		}
		for _, n := range s {
			if n.Ready {
				return false
			}
		}
		return true
	}); err != nil {
		return r, fmt.Errorf("nodes still Ready after the reference conflist was removed: %w", err)
	}

	// ovsmesh, installed as a user does.
	if out, err := c.InstallOperator(ctx); err != nil {
		return r, fmt.Errorf("%w\n%s", err, out)
	}
	if err := c.WaitOperator(ctx, 2*time.Minute); err != nil {
		return r, err
	}
	t0 = time.Now()
	if out, err := c.KubectlStdin(ctx, kubenodes.NetworkCluster, "apply", "--server-side", "-f", "-"); err != nil {
		return r, fmt.Errorf("%w\n%s", err, out)
	}
	if err := c.WaitNodesReady(ctx, 3*time.Minute); err != nil {
		return r, err
	}
	if err := c.WaitAvailable(ctx, 2*time.Minute); err != nil {
		return r, err
	}
	r.OursNetReady = time.Since(t0)
	r.Ours, err = startPods(ctx, cs, "ovsmesh", o.Pods)
	fmt.Fprintf(e.Log, "pod start samples, in creation order (ms):\n  bridge+host-local: %s\n  ovsmesh:           %s\n", msList(r.Ref), msList(r.Ours))
	return r, err
}

func msList(ds []time.Duration) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d", d.Milliseconds())
	}
	return b.String()
}

// startPods creates n pods one after another, each timed from just before its create call
// to the watch event that first shows it Running with an address, then deletes them all.
func startPods(ctx context.Context, cs kubernetes.Interface, side string, n int) ([]time.Duration, error) {
	ns := "bench-" + side
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	defer func() {
		grace := int64(0)
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}()
	// Pods are admitted only once the namespace's default ServiceAccount exists.
	if err := proc.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, func() bool {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%d", i)
		w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			return lat, err
		}
		grace := int64(0)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
				Name: "c", Image: kubenodes.TestPodImage, ImagePullPolicy: corev1.PullIfNotPresent, Args: []string{"serve", ":8080"}}}}}
		t0 := time.Now()
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			w.Stop()
			return lat, err
		}
		d, err := untilRunning(ctx, w, t0, time.Minute)
		w.Stop()
		if err != nil {
			return lat, fmt.Errorf("pod %s/%s: %w", ns, name, err)
		}
		lat = append(lat, d)
	}
	return lat, nil
}

// untilRunning reads w until the pod is Running with an address; it returns the time since t0.
func untilRunning(ctx context.Context, w watch.Interface, t0 time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.After(timeout)
	last := "no event"
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return 0, fmt.Errorf("watch closed (last: %s)", last)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				return time.Since(t0), nil
			}
			last = string(p.Status.Phase)
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Waiting != nil {
					last += " " + cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
				}
			}
		case <-deadline:
			return 0, fmt.Errorf("not Running with an address within %s (last: %s)", timeout, strings.TrimSpace(last))
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
