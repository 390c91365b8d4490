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
	// Let in-flight passes finish (adoption of the last claims), then check the invariants.
	e.waitClaimsAdopted()
	e.checkAllocation(defaultPool)
	e.eventually(20*time.Second, "status counts", func() error {
		st := e.cluster().Status
		if st.NodesTotal != n || st.SubnetsUsed != n || st.SubnetsFree != 256-n {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})

	logs := e.logs.String()
	t.Logf("claim collisions between the replicas: %d for another node, %d for the same node; NodeSubnet create races: %d",
		strings.Count(logs, "subnet already claimed by another allocator"),
		strings.Count(logs, "subnet already claimed for this node by another allocator"),
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
// starts another: no duplicates, nothing leaked. It also plants the state a replica leaves
// when it dies between claiming a CIDR and creating the NodeSubnet: the new replica resumes
// that claim (the node gets exactly that CIDR) instead of leaking it.
func TestIPAMRestartMidAllocation(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(nil)

	// A claim for node 49 on 10.244.200.0/24 without NodeSubnet: a crashed allocation.
	orphanCIDR := netip.MustParsePrefix("10.244.200.0/24")
	if err := e.c.Create(e.ctx(), newClaim(e.ns, orphanCIDR, e.nodeName(49), nil)); err != nil {
		t.Fatal(err)
	}

	first := e.startManager(Options{})
	const n = 50
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, e.nodeName(i))
	}
	go func() {
		for i, name := range names {
			if _, err := e.createNode(e.ctx(), name, fmt.Sprintf("10.1.0.%d", 1+i), nil); err != nil {
				t.Error(err)
			}
		}
	}()
	e.eventually(30*time.Second, "the first replica to be mid-way", func() error {
		if k := len(e.subnets()); k < 5 {
			return fmt.Errorf("%d NodeSubnets", k)
		}
		return nil
	})
	first.stop()
	mid := len(e.subnets())
	t.Logf("first replica stopped after %d of %d NodeSubnets", mid, n)

	e.startManager(Options{})
	got := e.waitSubnets(60*time.Second, names...)
	e.waitClaimsAdopted()
	e.checkAllocation(defaultPool)
	if c := got[e.nodeName(49)].Spec.CIDR; c != orphanCIDR.String() {
		t.Errorf("node 49 got %s, want the CIDR of its earlier claim %s", c, orphanCIDR)
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
	e.eventually(20*time.Second, "the claim of the deleted node to go", func() error {
		for _, c := range e.claims() {
			if c.CIDR.String() == freed {
				return fmt.Errorf("claim %s still there", c.Name)
			}
		}
		return nil
	})
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
	e.waitClaimsAdopted()
	e.checkAllocation(defaultPool)
}

// TestAllocateCollisionAndFence drives one allocation step directly against the API server
// with the views a racing replica would have:
//   - its list was taken before another replica claimed 10.244.0.0/24 for another node: the
//     claim create fails and it takes the next subnet, never the claimed one;
//   - its claim was released while it stalled (the fence): the NodeSubnet it created is taken
//     back and the step fails, to be retried from a fresh view.
func TestAllocateCollisionAndFence(t *testing.T) {
	e := newOpEnv(t)
	r := &IPAMReconciler{Client: e.c, APIReader: e.c, Options: Options{Namespace: e.ns}.withDefaults()}
	log := ctrl.Log
	x := netip.MustParsePrefix("10.244.0.0/24")
	if err := e.c.Create(e.ctx(), newClaim(e.ns, x, "someone-else", nil)); err != nil {
		t.Fatal(err)
	}
	n := e.mustNode(e.nodeName(0), "192.168.10.10", nil)
	stale := map[int]bool{} // does not know about the claim on 10.244.0.0/24
	step, err := r.allocate(e.ctx(), log, &picker{pool: defaultPool, used: stale}, allocation{Node: n, IP: netip.MustParseAddr("192.168.10.10")}, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	// The rest of the step as a pass does it: the fence, then (a later pass) the adoption.
	kept, errs := r.confirm(e.ctx(), log, []allocated{step})
	if len(errs) > 0 || len(kept) != 1 {
		t.Fatalf("fence: kept %d, errors %v", len(kept), errs)
	}
	if err := r.adoptAll(e.ctx(), []claimAdoption{{Claim: claim{Name: kept[0].ClaimName, Lease: kept[0].Claim}, Subnet: kept[0].Subnet}}); err != nil {
		t.Fatal(err)
	}
	got := step.CIDR
	if got.String() != "10.244.1.0/24" {
		t.Fatalf("allocated %s, want the next free 10.244.1.0/24", got)
	}
	s, err := e.subnet(n.Name)
	if err != nil || s.Spec.CIDR != "10.244.1.0/24" {
		t.Fatalf("NodeSubnet %+v (%v)", s, err)
	}
	for _, c := range e.claims() {
		if c.CIDR == x && c.Holder != "someone-else" {
			t.Errorf("the other allocator's claim was overwritten: %+v", c)
		}
		if c.CIDR == got && c.Owner != s.UID {
			t.Errorf("own claim not adopted: %+v", c)
		}
	}

	// The fence: resume a claim that is deleted before the NodeSubnet is created.
	n2 := e.mustNode(e.nodeName(1), "192.168.10.11", nil)
	y := netip.MustParsePrefix("10.244.7.0/24")
	l := newClaim(e.ns, y, n2.Name, nil)
	if err := e.c.Create(e.ctx(), l); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Delete(e.ctx(), l); err != nil { // released by another replica meanwhile
		t.Fatal(err)
	}
	c := claim{Name: l.Name, UID: l.UID, CIDR: y, Holder: n2.Name, Lease: l}
	step, err = r.allocate(e.ctx(), log, &picker{pool: defaultPool, used: map[int]bool{}}, allocation{Node: n2, IP: netip.MustParseAddr("192.168.10.11"), Resume: &c}, netip.Prefix{})
	if err == nil {
		kept, errs = r.confirm(e.ctx(), log, []allocated{step})
		if len(kept) > 0 || len(errs) == 0 {
			t.Fatal("allocation on a released claim succeeded")
		}
	}
	e.eventually(10*time.Second, "the unfenced NodeSubnet to be taken back", func() error {
		_, err := e.subnet(n2.Name)
		return isGone(err)
	})
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
