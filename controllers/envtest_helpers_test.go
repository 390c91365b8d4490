package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// The controller tests run the real reconcilers in real managers against a real
// kube-apiserver + etcd (envtest). There is no kube-controller-manager (no garbage
// collector, no DaemonSet controller) and no kubelet, so agents are simulated by writing
// NodeSubnet status, as the agent would.

// opEnv is one test's control plane, namespace and name prefix.
type opEnv struct {
	*testenv.Env
	t      *testing.T
	c      client.Client
	ns     string // the operator's namespace
	prefix string // per-run unique prefix for node names
	logs   *syncBuffer
}

// newOpEnv starts a control plane for one test and creates the operator namespace.
func newOpEnv(t *testing.T) *opEnv {
	t.Helper()
	setGlobalLoggerOnce.Do(func() { ctrl.SetLogger(logr.Discard()) })
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator logs:\n%s", logs.String())
		}
	})
	env := testenv.StartT(t)
	id := testbed.RunID(3)
	e := &opEnv{Env: env, t: t, c: env.Client, ns: "ovsmesh-" + id, prefix: "n" + id, logs: logs}
	if err := e.c.Create(e.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}); err != nil {
		t.Fatal(err)
	}
	return e
}

var setGlobalLoggerOnce sync.Once

// syncBuffer collects the managers' logs; they are printed when the test fails. (Writing to
// t.Log directly would panic when a goroutine of a stopping manager logs after the test.)
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *opEnv) ctx() context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	e.t.Cleanup(cancel)
	return c
}

// manager is a running operator replica.
type manager struct {
	stop    func()
	elected <-chan struct{}
}

// startManager starts an operator replica (a ctrl.Manager with the reconcilers, metrics and
// probes off) and stops it at the end of the test. Several may run at once, as replicas do.
func (e *opEnv) startManager(opts Options, mutate ...func(*ctrl.Options)) *manager {
	e.t.Helper()
	return e.startManagerAs(e.Config, opts, mutate...)
}

// startManagerAs starts a replica with the credentials of cfg.
func (e *opEnv) startManagerAs(cfg *rest.Config, opts Options, mutate ...func(*ctrl.Options)) *manager {
	e.t.Helper()
	opts.Namespace = e.ns
	mo := ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Logger:                 zap.New(zap.UseDevMode(true), zap.WriteTo(e.logs)),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(e.ns),
		// Several managers in one process register controllers of the same names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	for _, m := range mutate {
		m(&mo)
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := Setup(mgr, opts); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	m := &manager{elected: mgr.Elected(), stop: func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("manager: %v", err)
				}
			case <-time.After(30 * time.Second):
				e.t.Errorf("manager did not stop")
			}
		})
	}}
	e.t.Cleanup(m.stop)
	return m
}

// createCluster creates the NetworkCluster, with the given spec changes.
func (e *opEnv) createCluster(mutate func(*v1alpha1.NetworkClusterSpec)) *v1alpha1.NetworkCluster {
	e.t.Helper()
	nc := &v1alpha1.NetworkCluster{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NetworkClusterName}}
	if mutate != nil {
		mutate(&nc.Spec)
	}
	if err := e.c.Create(e.ctx(), nc); err != nil {
		e.t.Fatal(err)
	}
	return nc
}

func (e *opEnv) cluster() *v1alpha1.NetworkCluster {
	e.t.Helper()
	nc := &v1alpha1.NetworkCluster{}
	if err := e.c.Get(e.ctx(), clusterKey, nc); err != nil {
		e.t.Fatal(err)
	}
	return nc
}

func (e *opEnv) nodeName(i int) string { return fmt.Sprintf("%s-%02d", e.prefix, i) }

// createNode creates a Node; with ip != "" it also gets that InternalIP through the status
// subresource, as the kubelet reports it.
func (e *opEnv) createNode(ctx context.Context, name, ip string, labels map[string]string) (*corev1.Node, error) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := e.c.Create(ctx, n); err != nil {
		return nil, err
	}
	if ip != "" {
		if err := e.setNodeIP(ctx, n, ip); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (e *opEnv) mustNode(name, ip string, labels map[string]string) *corev1.Node {
	e.t.Helper()
	n, err := e.createNode(e.ctx(), name, ip, labels)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *opEnv) setNodeIP(ctx context.Context, n *corev1.Node, ip string) error {
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: n.Name}, {Type: corev1.NodeInternalIP, Address: ip}}
	return e.c.Status().Update(ctx, n)
}

func (e *opEnv) deleteNode(name string) {
	e.t.Helper()
	if err := e.c.Delete(e.ctx(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *opEnv) subnets() []v1alpha1.NodeSubnet {
	e.t.Helper()
	var l v1alpha1.NodeSubnetList
	if err := e.c.List(e.ctx(), &l); err != nil {
		e.t.Fatal(err)
	}
	return l.Items
}

func (e *opEnv) subnet(name string) (*v1alpha1.NodeSubnet, error) {
	s := &v1alpha1.NodeSubnet{}
	return s, e.c.Get(e.ctx(), client.ObjectKey{Name: name}, s)
}

// blocks are the subnet block Leases of pool, and every other Lease labelled as one.
func (e *opEnv) blocks(pool Pool) (map[int]block, []*coordinationv1.Lease) {
	e.t.Helper()
	leases, err := listSubnetLeases(e.ctx(), e.c, e.ns)
	if err != nil {
		e.t.Fatal(err)
	}
	return parseBlocks(pool, leases)
}

// eventually retries f until it returns nil, failing the test with f's last error.
func (e *opEnv) eventually(timeout time.Duration, what string, f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitSubnets waits until exactly the named nodes have NodeSubnets.
func (e *opEnv) waitSubnets(timeout time.Duration, names ...string) map[string]v1alpha1.NodeSubnet {
	e.t.Helper()
	var got map[string]v1alpha1.NodeSubnet
	e.eventually(timeout, fmt.Sprintf("NodeSubnets for %d nodes", len(names)), func() error {
		got = map[string]v1alpha1.NodeSubnet{}
		for _, s := range e.subnets() {
			got[s.Name] = s
		}
		if len(got) != len(names) {
			return fmt.Errorf("%d NodeSubnets, want %d", len(got), len(names))
		}
		for _, n := range names {
			if _, ok := got[n]; !ok {
				return fmt.Errorf("no NodeSubnet %s", n)
			}
		}
		return nil
	})
	return got
}

// checkAllocation asserts the IPAM invariants on the current state: distinct CIDRs inside
// the pool, gateway = first address, every NodeSubnet allocated under a block Lease that
// exists, with an epoch no NodeSubnet of the block is above, and no other subnet Leases.
func (e *opEnv) checkAllocation(pool Pool) {
	e.t.Helper()
	subnets := e.subnets()
	blocks, other := e.blocks(pool)
	for _, l := range other {
		e.t.Errorf("subnet Lease %s is not a block of the pool", l.Name)
	}
	byCIDR := map[string]string{}
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s.Spec.CIDR)
		if err != nil {
			e.t.Errorf("%s: bad CIDR %q", s.Name, s.Spec.CIDR)
			continue
		}
		idx, ok := pool.Index(p)
		if !ok {
			e.t.Errorf("%s: CIDR %s not a node subnet of the pool", s.Name, p)
			continue
		}
		if other, dup := byCIDR[s.Spec.CIDR]; dup {
			e.t.Errorf("DUPLICATE: %s and %s both have %s", s.Name, other, s.Spec.CIDR)
		}
		byCIDR[s.Spec.CIDR] = s.Name
		if s.Spec.Gateway != Gateway(p).String() {
			e.t.Errorf("%s: gateway %s, want %s", s.Name, s.Spec.Gateway, Gateway(p))
		}
		if s.Spec.NodeName != s.Name {
			e.t.Errorf("%s: nodeName %s", s.Name, s.Spec.NodeName)
		}
		b, ok := blocks[pool.BlockOf(idx)]
		switch ep := subnetEpoch(&s); {
		case ep < 0:
			e.t.Errorf("%s: no block epoch annotation (%v)", s.Name, s.Annotations)
		case !ok:
			e.t.Errorf("%s: no Lease for its block %s", s.Name, pool.BlockCIDR(pool.BlockOf(idx)))
		case ep > b.Epoch:
			e.t.Errorf("%s: epoch %d above its block's %d", s.Name, ep, b.Epoch)
		}
	}
}

// findEvent returns the first event about the object named regarding with the reason.
func (e *opEnv) findEvent(regarding, reason string) (*eventsv1.Event, error) {
	var l eventsv1.EventList
	if err := e.c.List(e.ctx(), &l, client.InNamespace(metav1.NamespaceDefault)); err != nil {
		return nil, err
	}
	for i := range l.Items {
		ev := &l.Items[i]
		if ev.Regarding.Name == regarding && ev.Reason == reason {
			return ev, nil
		}
	}
	return nil, fmt.Errorf("no %s event about %s (among %d events)", reason, regarding, len(l.Items))
}

// setAgentStatus writes a NodeSubnet's status as its agent would.
func (e *opEnv) setAgentStatus(name string, f func(*v1alpha1.NodeSubnetStatus)) {
	e.t.Helper()
	e.eventually(10*time.Second, "status write of "+name, func() error {
		s, err := e.subnet(name)
		if err != nil {
			return err
		}
		f(&s.Status)
		return e.c.Status().Update(e.ctx(), s)
	})
}

func cond(t, status, reason string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(status), Reason: reason, LastTransitionTime: metav1.Now()}
}

func isGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return errors.New("still there")
	}
	return err
}
