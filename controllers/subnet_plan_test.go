package controllers

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// Table-free unit tests of the pure IPAM planner: each builds a small world and checks one
// rule of claims.go / subnet_plan.go.

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

func claimOf(cidr, holder string, owner *v1alpha1.NodeSubnet, age time.Duration) claim {
	c := claim{Name: claimName(netip.MustParsePrefix(cidr)), UID: types.UID("claim-" + cidr), CIDR: netip.MustParsePrefix(cidr),
		Holder: holder, Created: t0.Add(-age)}
	if owner != nil {
		c.Owner = owner.UID
	}
	return c
}

func plan(nodes []corev1.Node, subnets []v1alpha1.NodeSubnet, claims []claim) subnetPlan {
	return planSubnets(planInput{Pool: defaultPool, Selector: labels.Everything(), Nodes: nodes, Subnets: subnets,
		Claims: claims, Now: t0, Grace: time.Minute})
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
		[]v1alpha1.NodeSubnet{a, b}, []claim{claimOf(a.Spec.CIDR, "a", &a, time.Hour), claimOf(b.Spec.CIDR, "b", &b, time.Hour)})
	if len(p.Allocate)+len(p.DeleteSubnets)+len(p.DeleteClaims)+len(p.AdoptClaims)+len(p.BackfillClaims)+len(p.UpdateNodeIP)+len(p.NoAddress) != 0 {
		t.Errorf("a consistent world must give an empty plan: %+v", p)
	}
	if !p.Used[0] || !p.Used[1] || p.Used[2] {
		t.Errorf("used %v", p.Used)
	}
}

func TestPlanAllocatesOldestFirstAndReportsNoAddress(t *testing.T) {
	p := plan([]corev1.Node{node("young", "10.0.0.3", 5, nil), node("old", "10.0.0.1", 1, nil), node("mid", "10.0.0.2", 3, nil), node("noip", "", 0, nil)}, nil, nil)
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
		node("mcast", "224.0.0.9", 3, nil), node("ok", "10.0.0.4", 4, nil)}, nil, nil)
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
	p := planSubnets(planInput{Pool: defaultPool, Selector: sel, Now: t0, Grace: time.Minute,
		Nodes:   []corev1.Node{node("in", "10.0.0.1", 0, map[string]string{"mesh": "yes"}), node("out", "10.0.0.2", 0, nil), node("new", "10.0.0.4", 0, map[string]string{"mesh": "yes"})},
		Subnets: []v1alpha1.NodeSubnet{in, out, gone},
		Claims:  []claim{claimOf(in.Spec.CIDR, "in", &in, time.Hour), claimOf(out.Spec.CIDR, "out", &out, time.Hour), claimOf(gone.Spec.CIDR, "gone", &gone, time.Hour)},
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
	p := plan([]corev1.Node{n}, []v1alpha1.NodeSubnet{s}, []claim{claimOf(s.Spec.CIDR, "a", &s, time.Hour)})
	if len(p.DeleteSubnets) != 1 || len(p.Allocate) != 0 {
		t.Errorf("the old node's NodeSubnet must go first (then the next pass allocates): %+v", p)
	}
}

func TestPlanClaims(t *testing.T) {
	a := nsub("a", "10.244.0.0/24", "10.0.0.1")
	nodes := []corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.0.0.2", 1, nil)}

	// Pending claim whose NodeSubnet now exists → adopted.
	p := plan(nodes, []v1alpha1.NodeSubnet{a}, []claim{claimOf(a.Spec.CIDR, "a", nil, 0), claimOf("10.244.5.0/24", "b", nil, 0)})
	if len(p.AdoptClaims) != 1 || p.AdoptClaims[0].Subnet.Name != "a" {
		t.Errorf("adopt %+v", p.AdoptClaims)
	}
	// Pending claim of a node without NodeSubnet → resumed with that CIDR, never re-used.
	if len(p.Allocate) != 1 || p.Allocate[0].Resume == nil || p.Allocate[0].Resume.CIDR.String() != "10.244.5.0/24" {
		t.Errorf("resume %+v", p.Allocate)
	}
	if !p.Used[5] {
		t.Error("a pending claim's CIDR must count as used")
	}

	// Two pending claims for one node (two replicas raced): the lowest is resumed; once the
	// NodeSubnet exists with it, the other is released.
	p = plan(nodes, []v1alpha1.NodeSubnet{a}, []claim{claimOf(a.Spec.CIDR, "a", &a, 0), claimOf("10.244.7.0/24", "b", nil, 0), claimOf("10.244.3.0/24", "b", nil, 0)})
	if len(p.Allocate) != 1 || p.Allocate[0].Resume.CIDR.String() != "10.244.3.0/24" {
		t.Errorf("resume the lowest: %+v", p.Allocate)
	}
	b := nsub("b", "10.244.3.0/24", "10.0.0.2")
	p = plan(nodes, []v1alpha1.NodeSubnet{a, b}, []claim{claimOf(a.Spec.CIDR, "a", &a, 0), claimOf("10.244.7.0/24", "b", nil, 0), claimOf("10.244.3.0/24", "b", nil, 0)})
	if len(p.DeleteClaims) != 1 || p.DeleteClaims[0].Claim.CIDR.String() != "10.244.7.0/24" {
		t.Errorf("the losing claim must be released: %+v", p.DeleteClaims)
	}

	// Owned claim whose NodeSubnet is gone → released.
	p = plan(nodes[:1], []v1alpha1.NodeSubnet{a}, []claim{claimOf(a.Spec.CIDR, "a", &a, 0), {Name: "x", CIDR: netip.MustParsePrefix("10.244.9.0/24"), Holder: "c", Owner: "deleted-uid", Created: t0}})
	if len(p.DeleteClaims) != 1 || p.DeleteClaims[0].Claim.Holder != "c" {
		t.Errorf("orphaned claim: %+v", p.DeleteClaims)
	}

	// Pending claim of a node that is gone: kept during the grace period, then released.
	young := claimOf("10.244.9.0/24", "gone", nil, 10*time.Second)
	p = plan(nodes[:1], []v1alpha1.NodeSubnet{a}, []claim{claimOf(a.Spec.CIDR, "a", &a, 0), young})
	if len(p.DeleteClaims) != 0 || p.RecheckAfter != 50*time.Second {
		t.Errorf("young pending claim: delete %+v recheck %s", p.DeleteClaims, p.RecheckAfter)
	}
	old := claimOf("10.244.9.0/24", "gone", nil, 2*time.Minute)
	p = plan(nodes[:1], []v1alpha1.NodeSubnet{a}, []claim{claimOf(a.Spec.CIDR, "a", &a, 0), old})
	if len(p.DeleteClaims) != 1 {
		t.Errorf("old pending claim must be released: %+v", p.DeleteClaims)
	}

	// A NodeSubnet without a claim gets one.
	p = plan(nodes[:1], []v1alpha1.NodeSubnet{a}, nil)
	if len(p.BackfillClaims) != 1 || p.BackfillClaims[0].Name != "a" {
		t.Errorf("backfill %+v", p.BackfillClaims)
	}
}

func TestPlanDuplicateCIDRKeepsClaimHolder(t *testing.T) {
	a, b := nsub("a", "10.244.0.0/24", "10.0.0.1"), nsub("b", "10.244.0.0/24", "10.0.0.2")
	a.CreationTimestamp = metav1.NewTime(t0.Add(time.Second)) // b is older, but a holds the claim
	b.CreationTimestamp = metav1.NewTime(t0)
	p := plan([]corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.0.0.2", 0, nil)}, []v1alpha1.NodeSubnet{a, b}, []claim{claimOf("10.244.0.0/24", "a", &a, 0)})
	if len(p.DeleteSubnets) != 1 || p.DeleteSubnets[0].Subnet.Name != "b" {
		t.Errorf("duplicate: %+v", p.DeleteSubnets)
	}
	// Without a claim the oldest stays.
	p = plan([]corev1.Node{node("a", "10.0.0.1", 0, nil), node("b", "10.0.0.2", 0, nil)}, []v1alpha1.NodeSubnet{a, b}, nil)
	if len(p.DeleteSubnets) != 1 || p.DeleteSubnets[0].Subnet.Name != "a" {
		t.Errorf("duplicate without claim: %+v", p.DeleteSubnets)
	}
}

func TestPlanNodeIPChangeAndForeignCIDR(t *testing.T) {
	a := nsub("a", "10.244.0.0/24", "10.0.0.1")
	f := nsub("f", "10.250.0.0/24", "10.0.0.2")
	p := plan([]corev1.Node{node("a", "10.0.0.9", 0, nil), node("f", "10.0.0.2", 0, nil)}, []v1alpha1.NodeSubnet{a, f}, []claim{claimOf(a.Spec.CIDR, "a", &a, 0)})
	if len(p.UpdateNodeIP) != 1 || p.UpdateNodeIP[0].IP.String() != "10.0.0.9" {
		t.Errorf("node IP update %+v", p.UpdateNodeIP)
	}
	if len(p.DeleteSubnets) != 1 || p.DeleteSubnets[0].Subnet.Name != "f" {
		t.Errorf("a NodeSubnet outside the cluster CIDR must be reallocated: %+v", p.DeleteSubnets)
	}
}

// A pass that allocates adopts only claims older than adoptionDeferral and requeues for the
// first young one; a pass with nothing to allocate adopts every claim at once.
func TestSplitAdoptions(t *testing.T) {
	a, b := nsub("a", "10.244.0.0/24", "192.168.0.1"), nsub("b", "10.244.1.0/24", "192.168.0.2")
	old := claimAdoption{claimOf(a.Spec.CIDR, "a", nil, adoptionDeferral), &a}
	young := claimAdoption{claimOf(b.Spec.CIDR, "b", nil, 3*time.Second), &b}

	due, recheck := splitAdoptions([]claimAdoption{old, young}, true, t0)
	if len(due) != 1 || due[0].Subnet.Name != "a" {
		t.Errorf("allocating pass adopts %+v, want only the old claim", due)
	}
	if want := adoptionDeferral - 3*time.Second; recheck != want {
		t.Errorf("recheck %v, want %v", recheck, want)
	}
	due, recheck = splitAdoptions([]claimAdoption{old, young}, false, t0)
	if len(due) != 2 || recheck != 0 {
		t.Errorf("quiet pass adopts %d (recheck %v), want both at once", len(due), recheck)
	}
	if got := minPositive(0, 5*time.Second); got != 5*time.Second {
		t.Errorf("minPositive(0, 5s) = %v", got)
	}
	if got := minPositive(2*time.Second, 5*time.Second); got != 2*time.Second {
		t.Errorf("minPositive(2s, 5s) = %v", got)
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
		if a.Resume != nil || !a.IP.IsValid() {
			t.Errorf("%s: %+v", a.Node.Name, a)
		}
	}
	if want := []string{"early", "late"}; !slices.Equal(names, want) {
		t.Errorf("arrivals %v, want %v", names, want)
	}
}
