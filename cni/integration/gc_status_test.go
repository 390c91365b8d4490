package integration

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/cni/plugin"
)

// TestGCRemovesOnlyInvalidAttachments: of three attachments only the first stays valid.
// GC runs through a libcni with an empty cache (a runtime that lost its state), so libcni
// itself issues no DELs and the cleanup is the plugin's own GC: with Debian's host-local
// (no GC of its own) that means reading host-local's store. Links that are not ovsmesh's,
// or belong to another ovsmesh network, must survive.
func TestGCRemovesOnlyInvalidAttachments(t *testing.T) {
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	keep, stale1, stale2 := n.newPod(t), n.newPod(t), n.newPod(t)
	ipKeep := podIP(t, n.mustAdd(t, l, keep))
	n.mustAdd(t, l, stale1)
	n.mustAdd(t, l, stale2)
	t.Cleanup(func() { _ = n.del(t, l, keep.rt()) })

	// Bystanders: a plain veth pair and one tagged for another ovsmesh network.
	n.do(func() error {
		other := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "other0"}, PeerName: "other1"}
		if err := netlink.LinkAdd(other); err != nil {
			return err
		}
		foreign := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "foreign0"}, PeerName: "foreign1"}
		if err := netlink.LinkAdd(foreign); err != nil {
			return err
		}
		return netlink.LinkSetAlias(foreign, "ovsmesh/othernet/"+stale1.id+"/eth0")
	})

	forgetful := newCNI([]string{binDir}, t.TempDir())
	err := n.try(func() error {
		return forgetful.GCNetworkList(ctx(t), l, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep.id, IfName: "eth0"}}})
	})
	if err != nil {
		t.Fatalf("GC: %v", err)
	}

	if got := n.reservations(l.Name); len(got) != 1 || got[ipKeep.String()] != keep.id+"/eth0" {
		t.Errorf("reservations after GC %v, want only %s for %s", got, ipKeep, keep.id)
	}
	for _, p := range []*pod{stale1, stale2} {
		if _, err := n.link(plugin.HostVethName(p.id, "eth0")); err == nil {
			t.Errorf("GC left the host veth of stale %s", p.id)
		}
		if podHasLink(t, p, "eth0") {
			t.Errorf("stale %s still has eth0", p.id)
		}
	}
	for _, name := range []string{plugin.HostVethName(keep.id, "eth0"), "other0", "foreign0"} {
		if _, err := n.link(name); err != nil {
			t.Errorf("GC removed %s, which it must keep: %v", name, err)
		}
	}
	if err := n.check(t, l, keep.rt()); err != nil {
		t.Errorf("CHECK of the valid attachment after GC: %v", err)
	}
	// The runtime's later DEL of a collected attachment still succeeds.
	if err := n.del(t, l, stale1.rt()); err != nil {
		t.Errorf("DEL after GC: %v", err)
	}
}

// TestStatus: not available (50) while the bridge is missing, ready once the agent has
// created it; not available either when the IPAM plugin is not installed.
func TestStatus(t *testing.T) {
	n := newNode(t, nodeOpts{noBridge: true})
	l := n.list(n.input("1.1.0"))

	te := cniError(t, n.status(t, l), config.ErrPluginNotAvailable)
	if te.Msg != "plugin not available" || !strings.Contains(te.Details, n.bridge) {
		t.Errorf("STATUS without the bridge: %+v, want 'plugin not available' naming %s", te, n.bridge)
	}
	p := n.newPod(t)
	if _, err := n.add(t, l, p.rt()); err == nil {
		t.Fatal("ADD succeeded without the bridge")
	} else {
		cniError(t, err, types.ErrTryAgainLater)
	}

	n.addBridge()
	if err := n.status(t, l); err != nil {
		t.Errorf("STATUS with the bridge: %v", err)
	}

	noIPAM := editPlugin(t, l, func(p map[string]any) { p["ipam"].(map[string]any)["type"] = "no-such-ipam" })
	te = cniError(t, n.status(t, noIPAM), config.ErrPluginNotAvailable)
	if !strings.Contains(te.Details, "no-such-ipam") {
		t.Errorf("STATUS without the IPAM plugin: %+v, want it named", te)
	}
}
