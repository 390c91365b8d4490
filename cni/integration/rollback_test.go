package integration

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
)

// TestAddRollsBackWhenIPAMIsExhausted: with a /30 the range holds one pod address, so the
// second ADD fails in IPAM, after the veth was made; the veth must be gone again.
func TestAddRollsBackWhenIPAMIsExhausted(t *testing.T) {
	n := newNode(t, nodeOpts{subnet: "10.244.1.0/30"})
	l := n.list(n.input("1.1.0"))
	first, second := n.newPod(t), n.newPod(t)
	n.mustAdd(t, l, first)
	t.Cleanup(func() { _ = n.del(t, l, first.rt()) })
	before := n.vethNames()

	_, err := n.add(t, l, second.rt())
	if err == nil || !strings.Contains(err.Error(), "no IP addresses available") {
		t.Fatalf("ADD with the range exhausted: %v, want host-local's 'no IP addresses available'", err)
	}
	if after := n.vethNames(); len(after) != 1 || after[0] != before[0] {
		t.Errorf("veths after the failed ADD %v, want only the first pod's %v", after, before)
	}
	if podHasLink(t, second, "eth0") {
		t.Error("the failed pod still has eth0")
	}
	if got := n.reservations(l.Name); len(got) != 1 {
		t.Errorf("reservations after the failed ADD: %v, want only the first pod's", got)
	}
	// The runtime follows a failed ADD with DEL; that must succeed too.
	if err := n.del(t, l, second.rt()); err != nil {
		t.Errorf("DEL after the failed ADD: %v", err)
	}
}

// TestAddRollsBackAfterIPAM: IPAM succeeds, then a route in the ipam section whose gateway
// is unreachable makes configuring the pod fail. The address must be released and the
// veth deleted.
func TestAddRollsBackAfterIPAM(t *testing.T) {
	n := newNode(t, nodeOpts{})
	l := editPlugin(t, n.list(n.input("1.1.0")), func(p map[string]any) {
		ipam := p["ipam"].(map[string]any)
		ipam["routes"] = append(ipam["routes"].([]any), map[string]any{"dst": "192.0.2.0/24", "gw": "198.51.100.1"})
	})
	p := n.newPod(t)

	_, err := n.add(t, l, p.rt())
	if err == nil || !strings.Contains(err.Error(), "198.51.100.1") {
		t.Fatalf("ADD with an unreachable route gateway: %v, want an error naming the route's gateway", err)
	}
	if v := n.vethNames(); len(v) != 0 {
		t.Errorf("veths left after the failed ADD: %v", v)
	}
	if podHasLink(t, p, "eth0") {
		t.Error("the failed pod still has eth0")
	}
	if got := n.reservations(l.Name); len(got) != 0 {
		t.Errorf("address leaked by the failed ADD: %v", got)
	}
}

// TestAddFailsWhenTheInterfaceExists: the pod netns already has an eth0 (not ovsmesh's). ADD
// must fail without touching it and without leaving a veth or an address behind.
func TestAddFailsWhenTheInterfaceExists(t *testing.T) {
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	p := n.newPod(t)
	inPod(t, p, func() error {
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}})
	})

	_, err := n.add(t, l, p.rt())
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("ADD into a netns that has eth0: %v, want an 'already exists' error", err)
	}
	inPod(t, p, func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil && l.Type() != "bridge" {
			t.Errorf("eth0 is now a %s", l.Type())
		}
		return err
	})
	if v := n.vethNames(); len(v) != 0 {
		t.Errorf("veths left after the failed ADD: %v", v)
	}
	if got := n.reservations(l.Name); len(got) != 0 {
		t.Errorf("address leaked by the failed ADD: %v", got)
	}
}

// TestRepeatedAddKeepsTheLiveAttachment: a second ADD for an attachment that is up must not
// touch it (the plugin used to delete the working veth, then fail). It is refused with CNI
// error JSON; the pod keeps its interface, address and reservation, and CHECK still passes.
func TestRepeatedAddKeepsTheLiveAttachment(t *testing.T) {
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	p := n.newPod(t)
	first := n.mustAdd(t, l, p)
	t.Cleanup(func() { _ = n.del(t, l, p.rt()) })
	var before *netlink.LinkAttrs
	inPod(t, p, func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			before = l.Attrs()
		}
		return err
	})
	veths, reserved := n.vethNames(), n.reservations(l.Name)

	_, err := n.add(t, l, p.rt())
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInternal || !strings.Contains(cniErr.Msg, `interface "eth0" already exists`) {
		t.Fatalf("repeated ADD: %v, want CNI error %d naming eth0", err, types.ErrInternal)
	}
	inPod(t, p, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if l.Attrs().Index != before.Index || l.Attrs().HardwareAddr.String() != before.HardwareAddr.String() {
			t.Errorf("eth0 was replaced: index %d → %d, MAC %s → %s", before.Index, l.Attrs().Index, before.HardwareAddr, l.Attrs().HardwareAddr)
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil || len(addrs) != 1 || addrs[0].IP.String() != first.IPs[0].Address.IP.String() {
			t.Errorf("eth0 addresses after the repeated ADD: %v (%v), want %s", addrs, err, first.IPs[0].Address.IP)
		}
		return nil
	})
	if got := n.vethNames(); !slices.Equal(got, veths) {
		t.Errorf("host veths %v → %v", veths, got)
	}
	if got := n.reservations(l.Name); !maps.Equal(got, reserved) {
		t.Errorf("reservations %v → %v", reserved, got)
	}
	if err := n.check(t, l, p.rt()); err != nil {
		t.Errorf("CHECK after the refused ADD: %v", err)
	}
}
