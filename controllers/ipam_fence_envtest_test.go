package controllers

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestIPAMStalledAllocatorPastGrace: an allocator claims a CIDR for a node and stalls past
// the claim grace period; meanwhile the node leaves and a real operator pass (its clock past
// the grace period) releases the claim and hands the CIDR to another node. When the stalled
// allocator wakes and creates its NodeSubnet, the pass's fence (one claim read after the
// creates) takes it back: the CIDR stays with the node that holds its claim now.
func TestIPAMStalledAllocatorPastGrace(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(nil)
	stalled := &IPAMReconciler{Client: e.c, APIReader: e.c, Options: Options{Namespace: e.ns}.withDefaults()}
	n1 := e.mustNode(e.nodeName(0), "192.168.20.10", nil)
	x := netip.MustParsePrefix("10.244.0.0/24") // the lowest: the operator hands it out next
	l := newClaim(e.ns, x, n1.Name, nil)
	if err := e.c.Create(e.ctx(), l); err != nil { // the stalled allocator's first step
		t.Fatal(err)
	}

	e.deleteNode(n1.Name)
	late := func() time.Time { return time.Now().Add(2 * DefaultClaimGracePeriod) }
	op := e.startManager(Options{Now: late})
	n2 := e.mustNode(e.nodeName(1), "192.168.20.11", nil)
	got := e.waitSubnets(30*time.Second, n2.Name)
	if got[n2.Name].Spec.CIDR != x.String() {
		t.Fatalf("node 1 got %s, want the released %s", got[n2.Name].Spec.CIDR, x)
	}
	// Its allocation is finished once the claim is adopted (after the fence); only then is
	// the operator stopped, since nothing else may clean up after the stalled allocator.
	e.eventually(20*time.Second, "node 1's claim adopted", func() error {
		for _, cl := range e.claims() {
			if cl.CIDR == x && cl.Owner == got[n2.Name].UID {
				return nil
			}
		}
		return fmt.Errorf("no claim of %s owned by node 1's NodeSubnet", x)
	})
	op.stop()

	// It wakes: its NodeSubnet create succeeds (the name is free), the fence refuses it.
	c := claim{Name: l.Name, UID: l.UID, CIDR: x, Holder: n1.Name, Lease: l}
	step, err := stalled.allocate(e.ctx(), ctrl.Log, &picker{pool: defaultPool, used: map[int]bool{}}, allocation{Node: n1, IP: netip.MustParseAddr("192.168.20.10"), Resume: &c}, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	if !step.CIDR.IsValid() {
		t.Fatal("the stalled allocator's NodeSubnet was not created: the test did not reach the fence")
	}
	kept, errs := stalled.confirm(e.ctx(), ctrl.Log, []allocated{step})
	if len(kept) != 0 || len(errs) != 1 {
		t.Fatalf("fence kept %d, errors %v; want the allocation refused", len(kept), errs)
	}
	if _, err := e.subnet(n1.Name); isGone(err) != nil {
		t.Errorf("NodeSubnet of the stalled allocation still there: %v", err)
	}
	if s, err := e.subnet(n2.Name); err != nil || s.UID != got[n2.Name].UID || s.Spec.CIDR != x.String() {
		t.Errorf("node 1's NodeSubnet changed: %+v (%v)", s, err)
	}
	holders := 0
	for _, cl := range e.claims() {
		if cl.CIDR == x {
			holders++
			if cl.Holder != n2.Name {
				t.Errorf("claim of %s held by %s, want %s", x, cl.Holder, n2.Name)
			}
		}
	}
	if holders != 1 {
		t.Errorf("%d claims of %s", holders, x)
	}
	e.checkAllocation(defaultPool)
}

// TestIPAMCrashAfterNodeSubnetCreate: an allocator died after creating the NodeSubnet, before
// its fence and the adoption (the claim is pending, its holder's NodeSubnet has its CIDR). The
// operator adopts that claim to that NodeSubnet; it neither reallocates the node nor hands the
// CIDR to the node created next.
func TestIPAMCrashAfterNodeSubnetCreate(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(nil)
	crashed := &IPAMReconciler{Client: e.c, APIReader: e.c, Options: Options{Namespace: e.ns}.withDefaults()}
	n := e.mustNode(e.nodeName(0), "192.168.30.10", nil)
	step, err := crashed.allocate(e.ctx(), ctrl.Log, &picker{pool: defaultPool, used: map[int]bool{}}, allocation{Node: n, IP: netip.MustParseAddr("192.168.30.10")}, netip.Prefix{})
	if err != nil || !step.CIDR.IsValid() {
		t.Fatalf("first two steps: %+v, %v", step, err)
	}

	e.startManager(Options{})
	n2 := e.mustNode(e.nodeName(1), "192.168.30.11", nil)
	got := e.waitSubnets(30*time.Second, n.Name, n2.Name)
	if s := got[n.Name]; s.UID != step.Subnet.UID || s.Spec.CIDR != step.CIDR.String() {
		t.Errorf("node 0's NodeSubnet was replaced: %s %s, want %s %s", s.UID, s.Spec.CIDR, step.Subnet.UID, step.CIDR)
	}
	if got[n2.Name].Spec.CIDR == step.CIDR.String() {
		t.Errorf("node 1 got node 0's CIDR %s", step.CIDR)
	}
	e.eventually(20*time.Second, "the crashed allocation's claim adopted", func() error {
		for _, c := range e.claims() {
			if c.CIDR == step.CIDR {
				if c.UID != step.ClaimUID || c.Owner != step.Subnet.UID {
					return fmt.Errorf("claim %+v, want UID %s owned by %s", c, step.ClaimUID, step.Subnet.UID)
				}
				return nil
			}
		}
		return fmt.Errorf("no claim of %s", step.CIDR)
	})
	e.checkAllocation(defaultPool)
}

// TestIPAMBurstReportedOnce: a pass that allocates many nodes writes one SubnetAllocated
// Event on the NetworkCluster naming them, not one per node; every claim is still adopted.
func TestIPAMBurstReportedOnce(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(nil)
	var names []string
	for i := 0; i < 2*perNodeEventLimit; i++ {
		names = append(names, e.mustNode(e.nodeName(i), fmt.Sprintf("192.168.40.%d", 10+i), nil).Name)
	}
	e.startManager(Options{}) // its first pass sees all of them
	e.waitSubnets(60*time.Second, names...)
	e.eventually(10*time.Second, "the pass's event", func() error {
		ev, err := e.findEvent(v1alpha1.NetworkClusterName, ReasonSubnetAllocated)
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("%d nodes got a pod subnet", len(names)); len(ev.Note) < len(want) || ev.Note[:len(want)] != want {
			return fmt.Errorf("note %q, want it to start with %q", ev.Note, want)
		}
		return nil
	})
	for _, name := range names {
		if ev, err := e.findEvent(name, ReasonSubnetAllocated); err == nil {
			t.Errorf("per-node event in a burst: %q", ev.Note)
		}
	}
	e.waitClaimsAdopted()
	e.checkAllocation(defaultPool)
}
