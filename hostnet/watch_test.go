package hostnet

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchReportsDrift: in a namespace of its own, Watch reports each change that can undo
// the agent's work on the host (its bridge set down, its veth deleted, the route deleted,
// the masquerade table deleted) within a second, and stays quiet for a link that is not
// ovsmesh's.
func TestWatchReportsDrift(t *testing.T) {
	name, h := testNS(t)
	s := State{
		Bridge:     Bridge{Name: "kbr0", Address: netip.MustParsePrefix("10.244.1.1/24"), MTU: 1450},
		Veth:       VethPair{Name: "vobr0", PeerName: "vkbr0", Master: "kbr0", MTU: 1450},
		Route:      Route{Dst: netip.MustParsePrefix("10.244.0.0/16"), Dev: "kbr0"},
		Masquerade: Masquerade{Enabled: true, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")},
	}
	if _, err := Apply(h, s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	if err := h.Watch(ctx, func() { n.Add(1) }); err != nil {
		t.Fatal(err)
	}
	quiet := func(what string) {
		t.Helper()
		time.Sleep(300 * time.Millisecond)
		if got := n.Swap(0); got != 0 {
			t.Errorf("%s: %d notifications, want none", what, got)
		}
	}
	notified := func(what string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for n.Load() == 0 {
			if time.Now().After(deadline) {
				t.Errorf("%s: no notification within 1 s", what)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		n.Store(0)
	}
	quiet("nothing happening")
	sh(t, "ip", "-n", name, "link", "add", "other0", "type", "veth", "peer", "name", "other1") // no dummy module here
	quiet("a link that is not ovsmesh's")
	for _, c := range []struct {
		what string
		cmd  []string
	}{
		{"route deleted", []string{"ip", "-n", name, "route", "del", "10.244.0.0/16"}},
		{"kbr0 set down", []string{"ip", "-n", name, "link", "set", "kbr0", "down"}},
		{"kbr0 set up", []string{"ip", "-n", name, "link", "set", "kbr0", "up"}},
		{"masquerade table deleted", []string{"ip", "netns", "exec", name, "nft", "delete", "table", "ip", "ovsmesh"}},
		{"veth deleted", []string{"ip", "-n", name, "link", "del", "vkbr0"}},
	} {
		sh(t, c.cmd...)
		notified(c.what)
	}
}
