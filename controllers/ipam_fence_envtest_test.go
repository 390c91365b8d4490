package controllers

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// TestIPAMStalledHolderLosesToTakeover: an allocator acquires block 0 and picks
// 10.244.0.0/24 for node 0, then stalls past its Lease (1 s). The operator takes the block
// over (a later epoch) and hands 10.244.0.0/24 to node 1. The stalled allocator wakes, creates
// its NodeSubnet with the same CIDR and dies before its fence: the operator's next pass sees
// two NodeSubnets with one CIDR and keeps the one of the later epoch, node 1's.
// (Node 0 has no InternalIP, so the operator itself never allocates it; the stalled allocator
// was handed one when it started.)
func TestIPAMStalledHolderLosesToTakeover(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(nil)
	stalled := &IPAMReconciler{Client: e.c, APIReader: e.c, Options: Options{Namespace: e.ns, Identity: "stalled", BlockLeaseDuration: time.Second}.withDefaults()}
	n0 := e.mustNode(e.nodeName(0), "", nil)
	pick := stalled.newPicker(ctrl.Log, defaultPool, map[int]block{}, map[int]bool{}, nil)
	x, b, err := pick.next(e.ctx())
	if err != nil || x.String() != "10.244.0.0/24" {
		t.Fatalf("stalled allocator picked %s (%v)", x, err)
	}
	time.Sleep(1100 * time.Millisecond) // its Lease runs out

	e.startManager(Options{})
	n1 := e.mustNode(e.nodeName(1), "192.168.20.11", nil)
	got := e.waitSubnets(30*time.Second, n1.Name)
	if got[n1.Name].Spec.CIDR != x.String() {
		t.Fatalf("node 1 got %s, want %s from the taken-over block", got[n1.Name].Spec.CIDR, x)
	}
	blocks, _ := e.blocks(defaultPool)
	if blocks[0].Holder == "stalled" || blocks[0].Epoch != b.Epoch+1 {
		t.Fatalf("block 0: holder %q epoch %d, want taken over in epoch %d", blocks[0].Holder, blocks[0].Epoch, b.Epoch+1)
	}

	// It wakes: its NodeSubnet create succeeds (the name is free), and it dies before its fence.
	step, err := stalled.allocate(e.ctx(), ctrl.Log, pick, allocation{Node: n0, IP: netip.MustParseAddr("192.168.20.10")}, x, b)
	if err != nil || step.CIDR != x {
		t.Fatalf("the stalled allocator's NodeSubnet was not created (%+v, %v): the test did not reach the duplicate", step, err)
	}
	e.eventually(20*time.Second, "the duplicate of the earlier epoch to be removed", func() error {
		_, err := e.subnet(n0.Name)
		return isGone(err)
	})
	if s, err := e.subnet(n1.Name); err != nil || s.UID != got[n1.Name].UID || s.Spec.CIDR != x.String() {
		t.Errorf("node 1's NodeSubnet changed: %+v (%v)", s, err)
	}
	// Had it lived to its fence, that would have refused the allocation too.
	if kept, errs := stalled.confirm(e.ctx(), ctrl.Log, defaultPool, []allocated{step}); len(kept) != 0 || len(errs) != 1 {
		t.Errorf("fence kept %d, errors %v; want the allocation refused", len(kept), errs)
	}
	e.checkAllocation(defaultPool)
}

// TestIPAMCrashAfterNodeSubnetCreate: an allocator died after creating a NodeSubnet, before
// its fence, without releasing its block. The operator keeps that NodeSubnet, and while the
// dead allocator's Lease runs it allocates the next node from another block, never the
// crashed allocation's CIDR.
func TestIPAMCrashAfterNodeSubnetCreate(t *testing.T) {
	e := newOpEnv(t)
	e.createCluster(nil)
	crashed := &IPAMReconciler{Client: e.c, APIReader: e.c, Options: Options{Namespace: e.ns}.withDefaults()}
	n := e.mustNode(e.nodeName(0), "192.168.30.10", nil)
	pick := crashed.newPicker(ctrl.Log, defaultPool, map[int]block{}, map[int]bool{}, nil)
	step, err := crashed.allocate(e.ctx(), ctrl.Log, pick, allocation{Node: n, IP: netip.MustParseAddr("192.168.30.10")}, netip.Prefix{}, block{})
	if err != nil || !step.CIDR.IsValid() {
		t.Fatalf("the crashed allocation: %+v, %v", step, err)
	}

	e.startManager(Options{})
	n2 := e.mustNode(e.nodeName(1), "192.168.30.11", nil)
	got := e.waitSubnets(30*time.Second, n.Name, n2.Name)
	if s := got[n.Name]; s.UID != step.Subnet.UID || s.Spec.CIDR != step.CIDR.String() {
		t.Errorf("node 0's NodeSubnet was replaced: %s %s, want %s %s", s.UID, s.Spec.CIDR, step.Subnet.UID, step.CIDR)
	}
	if c := got[n2.Name].Spec.CIDR; c != "10.244.32.0/24" {
		t.Errorf("node 1 got %s, want 10.244.32.0/24 (block 0 is the crashed allocator's until its Lease runs out)", c)
	}
	e.checkAllocation(defaultPool)
}

// TestIPAMBurstReportedOnce: a pass that allocates many nodes writes one SubnetAllocated
// Event on the NetworkCluster naming them, not one per node.
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
	e.checkAllocation(defaultPool)
}
