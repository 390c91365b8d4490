package controllers

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

var defaultPool = func() Pool { p, _ := NewPool("10.244.0.0/16", 24); return p }()

func TestIPAMOneSubnetPerNode(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	e.createCluster(nil)
	nodes := map[string]*corev1.Node{}
	var names []string
	for i := 0; i < 3; i++ {
		n := e.mustNode(e.nodeName(i), fmt.Sprintf("192.168.50.%d", 10+i), nil)
		nodes[n.Name] = n
		names = append(names, n.Name)
	}
	got := e.waitSubnets(30*time.Second, names...)
	e.checkAllocation(defaultPool)
	for name, s := range got {
		n := nodes[name]
		ip, _ := internalIPv4(n)
		if s.Spec.NodeIP != ip.String() {
			t.Errorf("%s: nodeIP %s, want %s", name, s.Spec.NodeIP, ip)
		}
		if !strings.HasSuffix(s.Spec.Gateway, ".1") || !strings.HasSuffix(s.Spec.CIDR, ".0/24") {
			t.Errorf("%s: cidr %s gateway %s", name, s.Spec.CIDR, s.Spec.Gateway)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Node" || s.OwnerReferences[0].UID != n.UID {
			t.Errorf("%s: owner references %+v, want the Node %s", name, s.OwnerReferences, n.UID)
		}
	}
	// The node's InternalIP changes: the NodeSubnet follows, its CIDR stays.
	n0 := nodes[names[0]]
	if err := e.setNodeIP(e.ctx(), n0, "192.168.60.10"); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "nodeIP update", func() error {
		s, err := e.subnet(n0.Name)
		if err != nil {
			return err
		}
		if s.Spec.NodeIP != "192.168.60.10" || s.Spec.CIDR != got[n0.Name].Spec.CIDR {
			return fmt.Errorf("nodeIP %s cidr %s", s.Spec.NodeIP, s.Spec.CIDR)
		}
		return nil
	})
}

// TestIPAMTwoReplicasFiftyNodesThenRestart: two operator replicas WITHOUT leader election
// allocate for 50 nodes created concurrently; no CIDR is handed out twice. Then both stop and
// a new replica starts: it changes nothing (every resourceVersion stays).
func TestIPAMTwoReplicasFiftyNodesThenRestart(t *testing.T) {
	e := newOpEnv(t)
	a := e.startManager(Options{})
	b := e.startManager(Options{})
	e.createCluster(nil)

	const n = 50
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, e.nodeName(i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.createNode(e.ctx(), name, fmt.Sprintf("10.0.%d.%d", i/200, 1+i%200), nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	e.waitSubnets(60*time.Second, names...)
	t.Logf("50 NodeSubnets allocated by two replicas in %s", time.Since(start).Round(time.Millisecond))
	e.checkAllocation(defaultPool)
	e.eventually(20*time.Second, "status counts", func() error {
		st := e.cluster().Status
		if st.NodesTotal != n || st.SubnetsUsed != n || st.SubnetsFree != 256-n {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})

	logs := e.logs.String()
	t.Logf("blocks found held by the other replica: %d; NodeSubnet create races: %d",
		strings.Count(logs, "subnet block held by another allocator"),
		strings.Count(logs, "NodeSubnet created concurrently by another allocator"))

	a.stop()
	b.stop()
	before := e.resourceVersions()
	for _, k := range []string{"validatingadmissionpolicy/" + AgentPolicyName, "validatingadmissionpolicybinding/" + AgentPolicyName, "daemonset/" + AgentName} {
		if _, ok := before[k]; !ok {
			t.Errorf("%s missing before the restart: the check below would not cover it", k)
		}
	}
	ipamPasses, ncPasses := reconcileCount("nodesubnet-ipam"), reconcileCount("networkcluster")
	e.startManager(Options{})
	// Wait until the new replica has run full passes of both reconcilers, then nothing may
	// have changed.
	e.eventually(20*time.Second, "passes of the new replica", func() error {
		if reconcileCount("nodesubnet-ipam") <= ipamPasses || reconcileCount("networkcluster") <= ncPasses {
			return fmt.Errorf("no pass yet")
		}
		return nil
	})
	time.Sleep(time.Second)
	after := e.resourceVersions()
	if len(before) != len(after) {
		t.Errorf("restart changed the set of objects: %d → %d", len(before), len(after))
	}
	for k, rv := range before {
		if after[k] != rv {
			t.Errorf("restart changed %s: resourceVersion %s → %s", k, rv, after[k])
		}
	}
	e.checkAllocation(defaultPool)
}

// resourceVersions of everything the operator writes.
func (e *opEnv) resourceVersions() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	add := func(kind string, l client.ObjectList, opts ...client.ListOption) {
		if err := e.c.List(e.ctx(), l, opts...); err != nil {
			e.t.Fatal(err)
		}
		items, _ := meta.ExtractList(l)
		for _, it := range items {
			o := it.(client.Object)
			out[kind+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	add("nodesubnet", &v1alpha1.NodeSubnetList{})
	add("networkcluster", &v1alpha1.NetworkClusterList{})
	add("lease", &coordinationv1.LeaseList{}, client.InNamespace(e.ns))
	add("daemonset", &appsv1.DaemonSetList{}, client.InNamespace(e.ns))
	add("serviceaccount", &corev1.ServiceAccountList{}, client.InNamespace(e.ns), client.MatchingLabels(managedLabels()))
	add("clusterrole", &rbacv1.ClusterRoleList{}, client.MatchingLabels(managedLabels()))
	add("clusterrolebinding", &rbacv1.ClusterRoleBindingList{}, client.MatchingLabels(managedLabels()))
	add("validatingadmissionpolicy", &admissionregistrationv1.ValidatingAdmissionPolicyList{}, client.MatchingLabels(managedLabels()))
	add("validatingadmissionpolicybinding", &admissionregistrationv1.ValidatingAdmissionPolicyBindingList{}, client.MatchingLabels(managedLabels()))
	return out
}

// TestIPAMRestartMidAllocation stops the only replica while it is allocating for 50 nodes and
// starts another: no duplicates, nothing leaked. The pool has two blocks, and the first one
// is held by an allocator that crashed (its Lease runs 3 s more) after giving node 49
// 10.244.5.0/24: the replicas allocate from the second block, nothing comes out of the first
// before the crashed allocator's Lease runs out, and then the block is taken over (a later
// epoch) without touching what the crashed allocator allocated. The stopped replica released
// its block.
func TestIPAMRestartMidAllocation(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(func(s *v1alpha1.NetworkClusterSpec) { s.ClusterCIDR = "10.244.0.0/18" })
	pool, _ := NewPool("10.244.0.0/18", 24)
	const n = 50
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, e.nodeName(i))
	}
	crashed := e.mustNode(names[49], "10.1.0.50", nil)
	dead := newBlockLease(e.ns, pool, 0, "crashed_1", 4, time.Now(), 3*time.Second)
	if err := e.c.Create(e.ctx(), dead); err != nil {
		t.Fatal(err)
	}
	deadUntil := dead.Spec.RenewTime.Add(3 * time.Second)
	orphan := &v1alpha1.NodeSubnet{
		ObjectMeta: metav1.ObjectMeta{Name: crashed.Name, Labels: managedLabels(), Annotations: map[string]string{AnnotationBlockEpoch: "4"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: crashed.Name, UID: crashed.UID}}},
		Spec: v1alpha1.NodeSubnetSpec{NodeName: crashed.Name, CIDR: "10.244.5.0/24", Gateway: "10.244.5.1", NodeIP: "10.1.0.50"},
	}
	if err := e.c.Create(e.ctx(), orphan); err != nil {
		t.Fatal(err)
	}

	first := e.startManager(Options{})
	go func() {
		for i, name := range names[:49] {
			if _, err := e.createNode(e.ctx(), name, fmt.Sprintf("10.1.0.%d", 1+i), nil); err != nil {
				t.Error(err)
			}
		}
	}()
	e.eventually(30*time.Second, "the first replica to be mid-way", func() error {
		if k := len(e.subnets()); k < 6 {
			return fmt.Errorf("%d NodeSubnets", k)
		}
		return nil
	})
	first.stop()
	mid := len(e.subnets())
	t.Logf("first replica stopped after %d of %d NodeSubnets", mid-1, n-1)
	// A stopping replica releases its blocks (the next one need not wait for their Leases).
	blocks, _ := e.blocks(pool)
	for i, b := range blocks {
		if b.Holder != "" && b.Holder != "crashed_1" {
			t.Errorf("block %s still held by the stopped replica %q", pool.BlockCIDR(i), b.Holder)
		}
	}
	if b, ok := blocks[1]; !ok || b.Holder != "" {
		t.Errorf("block 1, which the first replica allocated from, is not released: %+v", b)
	}

	e.startManager(Options{})
	got := e.waitSubnets(60*time.Second, names...)
	e.checkAllocation(pool)
	if s := got[crashed.Name]; s.UID != orphan.UID || s.Spec.CIDR != orphan.Spec.CIDR {
		t.Errorf("node 49's NodeSubnet from the crashed allocator changed: %s %s", s.UID, s.Spec.CIDR)
	}
	blocks, _ = e.blocks(pool)
	if b := blocks[0]; b.Holder == "crashed_1" || b.Epoch <= 4 {
		t.Errorf("block 0 not taken over: holder %q epoch %d", b.Holder, b.Epoch)
	}
	// Nothing came out of block 0 before the crashed allocator's Lease ran out (creation
	// timestamps have a resolution of one second).
	for _, name := range names[:49] {
		sub := got[name]
		if idx, _ := pool.ParseIndex(sub.Spec.CIDR); pool.BlockOf(idx) == 0 && sub.CreationTimestamp.Add(time.Second).Before(deadUntil) {
			t.Errorf("%s got %s from block 0 at %s, before the crashed allocator's Lease ran out at %s", name, sub.Spec.CIDR, sub.CreationTimestamp, deadUntil)
		}
	}
}

func TestIPAMNodeDeletedSubnetReleasedAndReused(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	e.createCluster(nil)
	for i := 0; i < 3; i++ {
		e.mustNode(e.nodeName(i), fmt.Sprintf("192.168.1.%d", 10+i), nil)
	}
	got := e.waitSubnets(30*time.Second, e.nodeName(0), e.nodeName(1), e.nodeName(2))
	freed := got[e.nodeName(1)].Spec.CIDR

	// No garbage collector runs in envtest: the reconciler itself removes the NodeSubnet.
	e.deleteNode(e.nodeName(1))
	e.waitSubnets(30*time.Second, e.nodeName(0), e.nodeName(2))
	if _, err := e.findEvent(v1alpha1.NetworkClusterName, ReasonSubnetReleased); err != nil {
		t.Error(err)
	}

	// The lowest free subnet is handed out first: the new node reuses the freed one.
	e.mustNode(e.nodeName(3), "192.168.1.13", nil)
	now := e.waitSubnets(30*time.Second, e.nodeName(0), e.nodeName(2), e.nodeName(3))
	if c := now[e.nodeName(3)].Spec.CIDR; c != freed {
		t.Errorf("new node got %s, want the released %s", c, freed)
	}
	for _, k := range []int{0, 2} {
		if now[e.nodeName(k)].UID != got[e.nodeName(k)].UID {
			t.Errorf("NodeSubnet of node %d was replaced", k)
		}
	}
	e.checkAllocation(defaultPool)
}

func TestIPAMExhaustion(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	e.createCluster(func(s *v1alpha1.NetworkClusterSpec) {
		s.ClusterCIDR = "10.99.0.0/29"
		s.NodeSubnetPrefixLength = 30
	})
	pool, _ := NewPool("10.99.0.0/29", 30)
	// Creation order decides who is left out: the newest node.
	for i := 0; i < 3; i++ {
		e.mustNode(e.nodeName(i), fmt.Sprintf("192.168.2.%d", 10+i), nil)
		time.Sleep(1100 * time.Millisecond) // creationTimestamp has a resolution of one second
	}
	got := e.waitSubnets(30*time.Second, e.nodeName(0), e.nodeName(1))
	e.checkAllocation(pool)
	left := e.nodeName(2)
	e.eventually(20*time.Second, "Degraded=SubnetsExhausted naming "+left, func() error {
		c := meta.FindStatusCondition(e.cluster().Status.Conditions, v1alpha1.ConditionDegraded)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonSubnetsExhausted || !strings.Contains(c.Message, left) {
			return fmt.Errorf("Degraded %+v", c)
		}
		return nil
	})
	e.eventually(20*time.Second, "exhaustion event", func() error {
		ev, err := e.findEvent(v1alpha1.NetworkClusterName, ReasonSubnetsExhausted)
		if err != nil {
			return err
		}
		if !strings.Contains(ev.Note, left) || ev.Type != corev1.EventTypeWarning {
			return fmt.Errorf("event %q (%s) does not name %s", ev.Note, ev.Type, left)
		}
		return nil
	})
	st := e.cluster().Status
	if st.SubnetsUsed != 2 || st.SubnetsFree != 0 || st.NodesTotal != 3 {
		t.Errorf("status counts %+v", st)
	}
	for _, k := range []int{0, 1} {
		s, err := e.subnet(e.nodeName(k))
		if err != nil || s.UID != got[e.nodeName(k)].UID {
			t.Errorf("allocated node %d lost or changed its NodeSubnet: %v", k, err)
		}
	}

	// A node leaves: the node that was left out gets the freed subnet, Degraded clears.
	freed := got[e.nodeName(0)].Spec.CIDR
	e.deleteNode(e.nodeName(0))
	now := e.waitSubnets(30*time.Second, e.nodeName(1), left)
	if now[left].Spec.CIDR != freed {
		t.Errorf("%s got %s, want %s", left, now[left].Spec.CIDR, freed)
	}
	e.eventually(20*time.Second, "Degraded to clear", func() error {
		if c := meta.FindStatusCondition(e.cluster().Status.Conditions, v1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("Degraded %+v", c)
		}
		return nil
	})
}

func TestIPAMNodeWithoutInternalIP(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	e.createCluster(nil)
	withIP := e.mustNode(e.nodeName(0), "192.168.3.10", nil)
	noIP := e.mustNode(e.nodeName(1), "", nil)
	e.waitSubnets(30*time.Second, withIP.Name)
	e.eventually(20*time.Second, "NodeAddressMissing event", func() error {
		_, err := e.findEvent(noIP.Name, ReasonNodeAddressMissing)
		return err
	})
	// An IPv6-only InternalIP does not count either (the mesh is IPv4).
	if err := e.setNodeIP(e.ctx(), noIP, "fd00::5"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if _, err := e.subnet(noIP.Name); isGone(err) != nil {
		t.Fatalf("node without an IPv4 InternalIP got a NodeSubnet (err %v)", err)
	}
	if err := e.c.Get(e.ctx(), client.ObjectKeyFromObject(noIP), noIP); err != nil {
		t.Fatal(err)
	}
	if err := e.setNodeIP(e.ctx(), noIP, "192.168.3.11"); err != nil {
		t.Fatal(err)
	}
	got := e.waitSubnets(30*time.Second, withIP.Name, noIP.Name)
	if got[noIP.Name].Spec.NodeIP != "192.168.3.11" {
		t.Errorf("nodeIP %s", got[noIP.Name].Spec.NodeIP)
	}
	e.checkAllocation(defaultPool)
}

func TestIPAMNodeSelector(t *testing.T) {
	e := newOpEnv(t)
	e.startManager(Options{})
	sel := map[string]string{"ovsmesh.io/mesh": "yes"}
	e.createCluster(func(s *v1alpha1.NetworkClusterSpec) { s.NodeSelector = sel })
	in0 := e.mustNode(e.nodeName(0), "192.168.4.10", sel)
	in1 := e.mustNode(e.nodeName(1), "192.168.4.11", sel)
	out := e.mustNode(e.nodeName(2), "192.168.4.12", map[string]string{"ovsmesh.io/mesh": "no"})
	e.waitSubnets(30*time.Second, in0.Name, in1.Name)
	time.Sleep(time.Second)
	if _, err := e.subnet(out.Name); isGone(err) != nil {
		t.Errorf("unselected node has a NodeSubnet (%v)", err)
	}
	e.eventually(20*time.Second, "nodesTotal 2", func() error {
		if st := e.cluster().Status; st.NodesTotal != 2 {
			return fmt.Errorf("nodesTotal %d", st.NodesTotal)
		}
		return nil
	})
	// The DaemonSet runs only on the selected nodes.
	e.eventually(20*time.Second, "the DaemonSet's node selector", func() error {
		ds := &appsv1.DaemonSet{}
		if err := e.c.Get(e.ctx(), client.ObjectKey{Namespace: e.ns, Name: AgentName}, ds); err != nil {
			return err
		}
		if ds.Spec.Template.Spec.NodeSelector["ovsmesh.io/mesh"] != "yes" {
			return fmt.Errorf("nodeSelector %v", ds.Spec.Template.Spec.NodeSelector)
		}
		return nil
	})
	// A node that stops matching leaves the mesh; one that starts matching joins.
	in1.Labels = map[string]string{}
	if err := e.c.Update(e.ctx(), in1); err != nil {
		t.Fatal(err)
	}
	out.Labels = sel
	if err := e.c.Update(e.ctx(), out); err != nil {
		t.Fatal(err)
	}
	e.waitSubnets(30*time.Second, in0.Name, out.Name)
	e.checkAllocation(defaultPool)
}

// reconcileCount is controller-runtime's count of finished passes of a controller (over every
// manager of this test process).
func reconcileCount(controller string) float64 {
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// TestIPAMReplicasWithLeaderElectionFailover: the shipped deployment runs replicas with leader
// election. The leader is stopped mid-allocation; the other takes over and finishes, with no
// duplicates and no leaked claims.
func TestIPAMReplicasWithLeaderElectionFailover(t *testing.T) {
	e := newOpEnv(t)
	le := func(o *ctrl.Options) {
		o.LeaderElection = true
		o.LeaderElectionID = "ovsmesh-operator.network.ovsmesh.io"
		o.LeaderElectionNamespace = e.ns
		o.LeaderElectionReleaseOnCancel = true
		// Generous renewal (a loaded test machine must not lose the lease by accident);
		// failover is fast anyway because a stopping leader releases the lease.
		o.LeaseDuration = ptr.To(15 * time.Second)
		o.RenewDeadline = ptr.To(10 * time.Second)
		o.RetryPeriod = ptr.To(500 * time.Millisecond)
	}
	replicas := []*manager{e.startManager(Options{}, le), e.startManager(Options{}, le)}
	var leader, follower *manager
	e.eventually(20*time.Second, "a leader", func() error {
		for i, m := range replicas {
			select {
			case <-m.elected:
				leader, follower = m, replicas[1-i]
				return nil
			default:
			}
		}
		return fmt.Errorf("none elected")
	})
	select {
	case <-follower.elected:
		t.Fatal("both replicas are leaders")
	default:
	}
	e.createCluster(nil)
	const n = 30
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, e.nodeName(i))
	}
	go func() {
		for i, name := range names {
			if _, err := e.createNode(e.ctx(), name, fmt.Sprintf("10.2.0.%d", 1+i), nil); err != nil {
				t.Error(err)
			}
		}
	}()
	e.eventually(30*time.Second, "the leader to be mid-way", func() error {
		if k := len(e.subnets()); k < 5 {
			return fmt.Errorf("%d NodeSubnets", k)
		}
		return nil
	})
	leader.stop()
	t.Logf("leader stopped after %d of %d NodeSubnets", len(e.subnets()), n)
	e.eventually(20*time.Second, "the follower to take over", func() error {
		select {
		case <-follower.elected:
			return nil
		default:
			return fmt.Errorf("not elected")
		}
	})
	e.waitSubnets(60*time.Second, names...)
	e.checkAllocation(defaultPool)
}

// TestAllocateCollisionAndFence drives allocations directly against the API server with the
// views a racing replica would have:
//   - block 0 is held by another allocator whose Lease runs: the picker acquires block 1 and
//     hands out its lowest subnet, never one of block 0; the fence keeps it;
//   - block 1 is then taken over by another allocator while this one still believes it holds
//     it (a stall): the NodeSubnet it creates from it is taken back by the fence;
//   - the next renewal finds the block lost, and the picker moves on to block 2.
func TestAllocateCollisionAndFence(t *testing.T) {
	e := newOpEnv(t)
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	r := &IPAMReconciler{Client: e.c, APIReader: e.c, Options: Options{Namespace: e.ns, Identity: "me", Now: now}.withDefaults()}
	log := ctrl.Log
	if err := e.c.Create(e.ctx(), newBlockLease(e.ns, defaultPool, 0, "someone-else", 0, now(), time.Minute)); err != nil {
		t.Fatal(err)
	}
	listing := func() map[int]block {
		b, _ := e.blocks(defaultPool)
		return b
	}
	pick := r.newPicker(log, defaultPool, listing(), map[int]bool{}, nil)
	n := e.mustNode(e.nodeName(0), "192.168.10.10", nil)
	step, err := r.allocate(e.ctx(), log, pick, allocation{Node: n, IP: netip.MustParseAddr("192.168.10.10")}, netip.Prefix{}, block{})
	if err != nil {
		t.Fatal(err)
	}
	if step.CIDR.String() != "10.244.32.0/24" || step.Block != 1 || step.Epoch != 0 {
		t.Fatalf("allocated %s in block %d epoch %d, want 10.244.32.0/24, the first of block 1, in epoch 0", step.CIDR, step.Block, step.Epoch)
	}
	if kept, errs := r.confirm(e.ctx(), log, defaultPool, []allocated{step}); len(errs) > 0 || len(kept) != 1 {
		t.Fatalf("fence: kept %d, errors %v", len(kept), errs)
	}
	blocks := listing()
	if blocks[0].Holder != "someone-else" || blocks[1].Holder != "me" {
		t.Errorf("holders %q, %q", blocks[0].Holder, blocks[1].Holder)
	}
	if s, err := e.subnet(n.Name); err != nil || s.Annotations[AnnotationBlockEpoch] != "0" {
		t.Errorf("NodeSubnet %+v (%v)", s, err)
	}

	// Another allocator takes block 1 over (as after an expiry); this one does not know yet.
	thief := blocks[1].Lease.DeepCopy()
	hold(thief, "thief", blocks[1].Epoch+1, now(), time.Minute, true)
	if err := e.c.Update(e.ctx(), thief); err != nil {
		t.Fatal(err)
	}
	n2 := e.mustNode(e.nodeName(1), "192.168.10.11", nil)
	step, err = r.allocate(e.ctx(), log, pick, allocation{Node: n2, IP: netip.MustParseAddr("192.168.10.11")}, netip.Prefix{}, block{})
	if err != nil || step.Block != 1 {
		t.Fatalf("the stale picker should still hand out block 1: %+v, %v", step, err)
	}
	kept, errs := r.confirm(e.ctx(), log, defaultPool, []allocated{step})
	if len(kept) > 0 || len(errs) == 0 {
		t.Fatal("allocation in a block that changed hands passed the fence")
	}
	if _, err := e.subnet(n2.Name); isGone(err) != nil {
		t.Errorf("the unfenced NodeSubnet was not taken back: %v", err)
	}

	// The renewal finds block 1 lost; the next subnet comes from block 2.
	mu.Lock()
	clock = clock.Add(r.Options.BlockLeaseDuration / 2)
	mu.Unlock()
	pick.renewDue(e.ctx())
	next, b, err := pick.next(e.ctx())
	if err != nil || next.String() != "10.244.64.0/24" || b.Index != 2 {
		t.Errorf("after losing block 1: %s in block %d (%v), want 10.244.64.0/24 in block 2", next, b.Index, err)
	}
	if l := listing(); l[1].Holder != "thief" || l[0].Holder != "someone-else" {
		t.Errorf("other allocators' blocks were overwritten: %q, %q", l[0].Holder, l[1].Holder)
	}
}

// TestIPAMOnePassConcurrentInOrder: 40 nodes exist before the operator starts, so its first
// pass allocates all of them at once, 8 at a time. No CIDR is handed out twice, and with no
// other allocator around each node gets the subnet a sequential pass would have given it:
// the oldest node the lowest CIDR.
func TestIPAMOnePassConcurrentInOrder(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(nil)
	var names []string
	for i := 0; i < 40; i++ {
		names = append(names, e.mustNode(e.nodeName(i), fmt.Sprintf("192.168.70.%d", 10+i), nil).Name)
	}
	e.startManager(Options{AllocationWorkers: 8})
	got := e.waitSubnets(60*time.Second, names...)
	e.checkAllocation(defaultPool)
	for i, name := range names {
		if want := fmt.Sprintf("10.244.%d.0/24", i); got[name].Spec.CIDR != want {
			t.Errorf("%s (created %d.) got %s, want %s", name, i+1, got[name].Spec.CIDR, want)
		}
	}
}
