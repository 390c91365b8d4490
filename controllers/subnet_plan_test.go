package controllers

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Table-free unit tests of the pure IPAM planner and block rules: each builds a small world
// and checks one rule of blocks.go / subnet_plan.go.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func node(name, ip string, created int, lbls map[string]string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: lbls,
		CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(created) * time.Second))}}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

func nsub(name, cidr, ip string) v1alpha1.NodeSubnet {
	p := netip.MustParsePrefix(cidr)
	return v1alpha1.NodeSubnet{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("ns-" + name + "-" + cidr),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: types.UID("uid-" + name)}}},
		Spec: v1alpha1.NodeSubnetSpec{NodeName: name, CIDR: cidr, Gateway: Gateway(p).String(), NodeIP: ip},
	}
}

func plan(nodes []corev1.Node, subnets []v1alpha1.NodeSubnet) subnetPlan {
	return planSubnets(planInput{Pool: defaultPool, Selector: labels.Everything(), Nodes: nodes, Subnets: subnets})
}

func allocNames(p subnetPlan) []string {
	var out []string
	for _, a := range p.Allocate {
		out = append(out, a.Node.Name)
	}
	return out
}

func TestPlanSteadyStateDoesNothing(t *testing.T) {
	a, b := nsub("a", "10.244.0.0/24", "192.168.0.1"), nsub("b", "10.244.1.0/24", "192.168.0.2")
	p := plan([]corev1.Node{node("a", "192.168.0.1", 0, nil), node("b", "192.168.0.2", 1, nil)},
		[]v1alpha1.NodeSubnet{a, b})
	if len(p.Allocate)+len(p.DeleteSubnets)+len(p.UpdateNodeIP)+len(p.NoAddress) != 0 {
		t.Errorf("a consistent world must give an empty plan: %+v", p)
	}
	if !p.Used[0] || !p.Used[1] || p.Used[2] {
		t.Errorf("used %v", p.Used)
	}
}

func TestPlanAllocatesOldestFirstAndReportsNoAddress(t *testing.T) {
	p := plan([]corev1.Node{node("young", "10.0.0.3", 5, nil), node("old", "10.0.0.1", 1, nil), node("mid", "10.0.0.2", 3, nil), node("noip", "", 0, nil)}, nil)
	if got := allocNames(p); !slices.Equal(got, []string{"old", "mid", "young"}) {
		t.Errorf("allocation order %v", got)
	}
	if !slices.Equal(p.NoAddress, []string{"noip"}) {
		t.Errorf("no address %v", p.NoAddress)
	}
}

// TestPlanSkipsUnusableAddresses: an InternalIP no tunnel can use gets no subnet (its
// NodeSubnet would be refused at admission, and as a peer it would break every tunnel
// sync): the node waits, named under NoAddress, like a node with no address at all.
func TestPlanSkipsUnusableAddresses(t *testing.T) {
	p := plan([]corev1.Node{node("zero", "0.0.0.0", 1, nil), node("loop", "127.0.0.1", 2, nil),
		node("mcast", "224.0.0.9", 3, nil), node("ok", "10.0.0.4", 4, nil)}, nil)
	if got := allocNames(p); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("allocations %v, want only the node with a usable address", got)
	}
	if got := slices.Sorted(slices.Values(p.NoAddress)); !slices.Equal(got, []string{"loop", "mcast", "zero"}) {
		t.Errorf("no address %v", got)
	}
}

func TestPlanSelectorAndVanishedNodes(t *testing.T) {
	sel := labels.SelectorFromSet(map[string]string{"mesh": "yes"})
	in, out, gone := nsub("in", "10.244.0.0/24", "10.0.0.1"), nsub("out", "10.244.1.0/24", "10.0.0.2"), nsub("gone", "10.244.2.0/24", "10.0.0.3")
	p := planSubnets(planInput{Pool: defaultPool, Selector: sel,
		Nodes:   []corev1.Node{node("in", "10.0.0.1", 0, map[string]string{"mesh": "yes"}), node("out", "10.0.0.2", 0, nil), node("new", "10.0.0.4", 0, map[string]string{"mesh": "yes"})},
		Subnets: []v1alpha1.NodeSubnet{in, out, gone},
	})
	var deleted []string
	for _, d := range p.DeleteSubnets {
		deleted = append(deleted, d.Subnet.Name)
	}
	if !slices.Equal(deleted, []string{"gone", "out"}) {
		t.Errorf("deleted %v", deleted)
	}
	if got := allocNames(p); !slices.Equal(got, []string{"new"}) {
		t.Errorf("allocate %v", got)
	}
	// The CIDRs of NodeSubnets being deleted stay used until their deletion is seen.
	if !p.Used[1] || !p.Used[2] {
		t.Errorf("used %v", p.Used)
	}
}

func TestPlanRecreatedNodeGetsFreshSubnet(t *testing.T) {
	s := nsub("a", "10.244.0.0/24", "10.0.0.1")
	n := node("a", "10.0.0.1", 0, nil)
	n.UID = "uid-a-second-life"
	p := plan([]corev1.Node{n}, []v1alpha1.NodeSubnet{s})
	if len(p.DeleteSubnets) != 1 || len(p.Allocate) != 0 {
		t.Errorf("the old node's NodeSubnet must go first (then the next pass allocates): %+v", p)
	}
}

// Two NodeSubnets with one CIDR: the one of the later block epoch stays, whatever their age;
// with equal (or no) epochs the oldest.
func TestPlanDuplicateCIDRKeepsLaterEpoch(t *testing.T) {
	a, b := nsub("a", "10.244.0.0/24", "10.0.0.1"), nsub("b", "10.244.0.0/24", "10.0.0.2")
	a.CreationTimestamp = metav1.NewTime(t0.Add(time.Second)) // b is older, but a has the later epoch
	b.CreationTimestamp = metav1.NewTime(t0)
	a.Annotations = map[string]string{AnnotationBlockEpoch: "3"}
	b.Annotations = map[string]string{AnnotationBlockEpoch: "2"}
	nodes := []corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.0.0.2", 0, nil)}
	p := plan(nodes, []v1alpha1.NodeSubnet{a, b})
	if len(p.DeleteSubnets) != 1 || p.DeleteSubnets[0].Subnet.Name != "b" {
		t.Errorf("duplicate: %+v", p.DeleteSubnets)
	}
	b.Annotations[AnnotationBlockEpoch] = "3"
	p = plan(nodes, []v1alpha1.NodeSubnet{a, b})
	if len(p.DeleteSubnets) != 1 || p.DeleteSubnets[0].Subnet.Name != "a" {
		t.Errorf("duplicate of one epoch, the oldest stays: %+v", p.DeleteSubnets)
	}
	a.Annotations, b.Annotations = nil, nil
	p = plan(nodes, []v1alpha1.NodeSubnet{a, b})
	if len(p.DeleteSubnets) != 1 || p.DeleteSubnets[0].Subnet.Name != "a" {
		t.Errorf("duplicate without epochs, the oldest stays: %+v", p.DeleteSubnets)
	}
	if !p.Used[0] || len(p.Allocate) != 0 {
		t.Errorf("used %v allocate %d", p.Used, len(p.Allocate))
	}
}

// The pool's blocks: 32 subnets each, named by their range and the subnets' length; a pool
// smaller than a block is one block.
func TestPoolBlocks(t *testing.T) {
	if n := defaultPool.Blocks(); n != 8 {
		t.Errorf("10.244.0.0/16 of /24s: %d blocks, want 8", n)
	}
	if got := defaultPool.BlockCIDR(1).String(); got != "10.244.32.0/19" {
		t.Errorf("block 1 %s", got)
	}
	if got := defaultPool.blockName(1); got != "ovsmesh-block-10-244-32-0-19-24" {
		t.Errorf("block name %s", got)
	}
	if b := defaultPool.BlockOf(33); b != 1 {
		t.Errorf("subnet 33 in block %d", b)
	}
	if first, end := defaultPool.BlockRange(2); first != 64 || end != 96 {
		t.Errorf("block 2 range [%d, %d)", first, end)
	}
	small, _ := NewPool("10.99.0.0/29", 30)
	if small.Blocks() != 1 || small.BlockCIDR(0).String() != "10.99.0.0/29" || small.blockName(0) != "ovsmesh-block-10-99-0-0-29-30" {
		t.Errorf("small pool: %d blocks, %s, %s", small.Blocks(), small.BlockCIDR(0), small.blockName(0))
	}
	// Every subnet is in exactly the block whose range holds it.
	for i := 0; i < defaultPool.Size(); i++ {
		b := defaultPool.BlockOf(i)
		if !defaultPool.BlockCIDR(b).Contains(defaultPool.Subnet(i).Addr()) {
			t.Fatalf("subnet %d (%s) not inside block %s", i, defaultPool.Subnet(i), defaultPool.BlockCIDR(b))
		}
	}
}

// What an allocator does with a block, from the Lease alone.
func TestBlockStep(t *testing.T) {
	held := func(holder string, renewed time.Duration, d time.Duration) block {
		return block{Holder: holder, Renewed: t0.Add(-renewed), Duration: d}
	}
	cases := []struct {
		name  string
		b     block
		known bool
		want  blockAction
	}{
		{"no Lease", block{}, false, blockCreate},
		{"mine, even expired", held("me", time.Hour, 30*time.Second), true, blockRenew},
		{"released", held("", 0, 30*time.Second), true, blockTakeOver},
		{"expired", held("other", 31*time.Second, 30*time.Second), true, blockTakeOver},
		{"live", held("other", 29*time.Second, 30*time.Second), true, blockBusy},
		{"no duration: never expires", held("other", time.Hour, 0), true, blockBusy},
	}
	for _, c := range cases {
		if got := blockStep(c.b, c.known, "me", t0); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A block Lease parses back to what was written; Leases that are not blocks of the pool
// (per-subnet claims of earlier versions, another pool's) are set apart; a NodeSubnet's
// epoch is its annotation, and a new Lease starts above the highest.
func TestBlockLeases(t *testing.T) {
	l := newBlockLease("ns", defaultPool, 3, "me", 7, t0, 30*time.Second)
	legacy := newBlockLease("ns", defaultPool, 0, "x", 0, t0, time.Second)
	legacy.Name = legacyClaimPrefix + "10-244-0-0-24"
	blocks, other := parseBlocks(defaultPool, []coordinationv1.Lease{*l, *legacy})
	b, ok := blocks[3]
	if !ok || len(blocks) != 1 || b.Holder != "me" || b.Epoch != 7 || !b.Renewed.Equal(t0) || b.Duration != 30*time.Second {
		t.Errorf("parsed %+v (%v)", b, ok)
	}
	if len(other) != 1 || other[0].Name != legacy.Name {
		t.Errorf("other %v", other)
	}
	if l.Labels[LabelSubnetClaim] != "true" || l.Annotations[AnnotationClaimCIDR] != "10.244.96.0/19" {
		t.Errorf("labels %v annotations %v", l.Labels, l.Annotations)
	}
	x, y, z := nsub("x", "10.244.1.0/24", "10.0.0.1"), nsub("y", "10.244.2.0/24", "10.0.0.2"), nsub("z", "10.244.40.0/24", "10.0.0.3")
	x.Annotations = map[string]string{AnnotationBlockEpoch: "4"}
	y.Annotations = map[string]string{AnnotationBlockEpoch: "9"}
	if got := maxEpochs(defaultPool, []v1alpha1.NodeSubnet{x, y, z}); got[0] != 9 || got[1] != -1 || len(got) != 2 {
		t.Errorf("max epochs %v", got)
	}
}

func TestPlanNodeIPChangeAndForeignCIDR(t *testing.T) {
	a := nsub("a", "10.244.0.0/24", "10.0.0.1")
	f := nsub("f", "10.250.0.0/24", "10.0.0.2")
	p := plan([]corev1.Node{node("a", "10.0.0.9", 0, nil), node("f", "10.0.0.2", 0, nil)}, []v1alpha1.NodeSubnet{a, f})
	if len(p.UpdateNodeIP) != 1 || p.UpdateNodeIP[0].IP.String() != "10.0.0.9" {
		t.Errorf("node IP update %+v", p.UpdateNodeIP)
	}
	if len(p.DeleteSubnets) != 1 || p.DeleteSubnets[0].Subnet.Name != "f" {
		t.Errorf("a NodeSubnet outside the cluster CIDR must be reallocated: %+v", p.DeleteSubnets)
	}
}

// Nodes that join while a pass runs: the selected ones with an address that the pass has not
// handled yet, oldest first.
func TestArrivals(t *testing.T) {
	sel := labels.SelectorFromSet(labels.Set{"mesh": "yes"})
	in := map[string]string{"mesh": "yes"}
	gone := node("gone", "192.168.0.9", 0, in)
	gone.DeletionTimestamp = &metav1.Time{Time: t0}
	nodes := []corev1.Node{
		node("late", "192.168.0.1", 5, in),
		node("early", "192.168.0.2", 1, in),
		node("planned", "192.168.0.3", 0, in),
		node("other", "192.168.0.4", 0, nil),
		node("noip", "", 0, in),
		gone,
	}
	got := arrivals(nodes, sel, map[string]bool{"planned": true})
	var names []string
	for _, a := range got {
		names = append(names, a.Node.Name)
		if !a.IP.IsValid() {
			t.Errorf("%s: %+v", a.Node.Name, a)
		}
	}
	if want := []string{"early", "late"}; !slices.Equal(names, want) {
		t.Errorf("arrivals %v, want %v", names, want)
	}
}
