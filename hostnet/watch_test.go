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
// the masquerade table deleted, ip_forward or send_redirects changed) within 2 s, keeps
// doing so after the kernel ends a subscription, and stays quiet for a link that is not
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
	subs := make(chan *subscription, 4)
	resubscribed := make(chan struct{}, 4)
	testHookSubscribed = func(s *subscription) { subs <- s }
	testHookResubscribed = func() { resubscribed <- struct{}{} }
	t.Cleanup(func() { testHookSubscribed, testHookResubscribed = nil, nil })
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
		t0 := time.Now()
		for n.Load() == 0 {
			if time.Since(t0) > 2*time.Second {
				t.Errorf("%s: no notification within 2 s", what)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: notified after %d ms", what, time.Since(t0).Milliseconds())
		time.Sleep(100 * time.Millisecond)
		n.Store(0)
	}
	quiet("nothing happening")
	sh(t, "ip", "-n", name, "link", "add", "other0", "type", "veth", "peer", "name", "other1") // no dummy module here
	quiet("a link that is not ovsmesh's")
	sysctl := func(kv string) []string { return []string{"ip", "netns", "exec", name, "sysctl", "-qw", kv} }
	drift := []struct {
		what string
		cmd  []string
	}{
		{"route deleted", []string{"ip", "-n", name, "route", "del", "10.244.0.0/16"}},
		{"ip_forward off", sysctl("net.ipv4.ip_forward=0")},
		{"send_redirects on kbr0", sysctl("net.ipv4.conf.kbr0.send_redirects=1")},
		{"send_redirects on all", sysctl("net.ipv4.conf.all.send_redirects=1")},
		{"kbr0 set down", []string{"ip", "-n", name, "link", "set", "kbr0", "down"}},
		{"kbr0 set up", []string{"ip", "-n", name, "link", "set", "kbr0", "up"}},
		{"masquerade table deleted", []string{"ip", "netns", "exec", name, "nft", "delete", "table", "ip", "ovsmesh"}},
		{"veth deleted", []string{"ip", "-n", name, "link", "del", "vkbr0"}},
	}
	for _, c := range drift {
		sh(t, c.cmd...)
		notified(c.what)
	}

	// The kernel ends a subscription (as it does when a socket overflows): Watch says
	// "look again", subscribes anew, and keeps reporting.
	first := <-subs
	close(first.done)
	select {
	case <-resubscribed:
	case <-time.After(5 * time.Second):
		t.Fatal("no new subscription within 5 s of the old one ending")
	}
	notified("subscription ended")
	quiet("after resubscribing")
	if _, err := Apply(h, s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the repair's own events and sysctl writes
	n.Store(0)
	for _, c := range drift[:3] {
		sh(t, c.cmd...)
		notified(c.what + ", after resubscribing")
	}
}
