package hostnet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SysctlPollInterval is how often Watch reads the sysctls the agent keeps. The kernel
// notifies none of them that matters here: RTM_NEWNETCONF covers forwarding but not
// send_redirects, and /proc/sys has no inotify. Three small reads a second cost nothing.
const SysctlPollInterval = time.Second

// resubscribeInterval paces new subscriptions after one ended (the kernel closed a socket
// that overflowed, ENOBUFS, under a burst of pod churn).
const resubscribeInterval = time.Second

// Watch calls changed whenever the kernel reports something that can undo what the agent
// keeps on the host: one of its links (its mark: the Linux bridge and both veth ends)
// changing (up/down, MTU, master, alias) or going; an IPv4 address or route being added or
// removed anywhere; any change to ovsmesh's nftables table (including its deletion); and,
// read every SysctlPollInterval, a change of ip_forward or of send_redirects (all, or one of
// its links). Events carry nothing the caller uses: the agent's loop is level-triggered and
// re-reads everything, so a burst of events is one pass. Other links' churn (every pod's
// veth) is filtered out.
//
// It watches the Host's namespace (the caller's own for New), returns once the
// subscriptions are in place (an error if one cannot be made), and stops when ctx ends. A
// subscription the kernel ends later (a socket overflow drops it) is made again, with a
// changed call for what may have been missed: the watch never goes quiet while ctx lives.
//
// This turns drift (someone deleting the masquerade table or setting kbr0 down) into a
// repair within milliseconds instead of at the next periodic resync.
func (h *Host) Watch(ctx context.Context, changed func()) error {
	s, err := h.subscribe()
	if err != nil {
		return err
	}
	go func() {
		sys := h.newWatchState()
		for {
			h.watchLoop(ctx, s, sys, changed)
			s.close()
			if ctx.Err() != nil {
				return
			}
			changed()
			for s = nil; s == nil; {
				select {
				case <-ctx.Done():
					return
				case <-time.After(resubscribeInterval):
				}
				s, _ = h.subscribe() // the next pass of the agent reports host errors itself
			}
			if testHookResubscribed != nil {
				testHookResubscribed()
			}
		}
	}()
	return nil
}

// testHookSubscribed and testHookResubscribed let the tests end a subscription as the
// kernel would, and see it made again.
var (
	testHookSubscribed   func(*subscription)
	testHookResubscribed func()
)

// subscription is one set of kernel subscriptions.
type subscription struct {
	done   chan struct{}
	links  chan netlink.LinkUpdate
	addrs  chan netlink.AddrUpdate
	routes chan netlink.RouteUpdate
	nft    *nftables.Conn
	mon    *nftables.Monitor
	nftEv  chan *nftables.MonitorEvent
}

func (h *Host) subscribe() (*subscription, error) {
	nsh := h.ns
	s := &subscription{
		done:   make(chan struct{}),
		links:  make(chan netlink.LinkUpdate, 64),
		addrs:  make(chan netlink.AddrUpdate, 64),
		routes: make(chan netlink.RouteUpdate, 64),
	}
	var errs []error
	if err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{Namespace: &nsh, ErrorCallback: func(error) {}}); err != nil {
		errs = append(errs, fmt.Errorf("subscribing to link changes: %w", err))
	}
	if err := netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{Namespace: &nsh, ErrorCallback: func(error) {}}); err != nil {
		errs = append(errs, fmt.Errorf("subscribing to address changes: %w", err))
	}
	if err := netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{Namespace: &nsh, ErrorCallback: func(error) {}}); err != nil {
		errs = append(errs, fmt.Errorf("subscribing to route changes: %w", err))
	}
	nft, err := h.nftLasting()
	if err == nil {
		s.nft = nft
		s.mon = nftables.NewMonitor(nftables.WithMonitorObject(nftables.MonitorObjectTables|nftables.MonitorObjectChains|nftables.MonitorObjectRules),
			nftables.WithMonitorEventBuffer(64))
		s.nftEv, err = nft.AddMonitor(s.mon)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("subscribing to nftables changes: %w", err))
	}
	if len(errs) > 0 {
		s.close()
		return nil, errors.Join(errs...)
	}
	if testHookSubscribed != nil {
		testHookSubscribed(s)
	}
	return s, nil
}

// close ends every subscription of s; safe to call twice.
func (s *subscription) close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	if s.mon != nil {
		_ = s.mon.Close()
		s.mon = nil
	}
	if s.nft != nil {
		_ = s.nft.CloseLasting()
		s.nft = nil
	}
}

// watchLoop forwards s's events to changed until ctx ends or one of s's subscriptions does.
func (h *Host) watchLoop(ctx context.Context, s *subscription, sys *watchState, changed func()) {
	tick := time.NewTicker(SysctlPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if sys.sysctlsChanged() {
				changed()
			}
		case u, ok := <-s.links:
			if !ok {
				return
			}
			// AF_BRIDGE messages are the bridge's view of its ports, without their alias:
			// the port's own AF_UNSPEC message says what changed on it.
			if u.Link != nil && u.IfInfomsg.Family != unix.AF_BRIDGE && sys.linkChanged(u.Link.Attrs(), u.Header.Type == unix.RTM_DELLINK) {
				changed()
			}
		case u, ok := <-s.addrs:
			if !ok {
				return
			}
			if u.LinkAddress.IP.To4() != nil {
				changed()
			}
		case u, ok := <-s.routes:
			if !ok {
				return
			}
			if u.Route.Family == netlink.FAMILY_V4 {
				changed()
			}
		case e, ok := <-s.nftEv:
			if !ok {
				return
			}
			if ours(e) {
				changed()
			}
		}
	}
}

// watchState remembers what the agent keeps on its links, and the last values of the
// sysctls it keeps.
type watchState struct {
	h *Host
	// links are ovsmesh's links (its mark), whose send_redirects it reads, with what Apply
	// sets on them.
	links map[string]linkFacts
	last  string
}

// linkFacts is what Apply sets on a link: a change of anything else (carrier, operstate,
// the IPv6 autoconfiguration the kernel runs on every new link) is no drift, and a pass
// for each would only cost cycles.
type linkFacts struct {
	index, mtu, master int
	up                 bool
	alias              string
}

func factsOf(a *netlink.LinkAttrs) linkFacts {
	return linkFacts{index: a.Index, mtu: a.MTU, master: a.MasterIndex, up: a.Flags&net.FlagUp != 0, alias: a.Alias}
}

func (h *Host) newWatchState() *watchState {
	w := &watchState{h: h, links: map[string]linkFacts{}}
	if ls, err := h.nl.LinkList(); err == nil {
		for _, l := range ls {
			if owned(l.Attrs().Alias) {
				w.links[l.Attrs().Name] = factsOf(l.Attrs())
			}
		}
	}
	w.last = w.read()
	return w
}

// linkChanged records a link update and reports whether it is drift: one of ovsmesh's links
// (marked now, or known as marked before: a mark removed is drift too) went, or changed
// what Apply sets on it, or a marked link appeared.
func (w *watchState) linkChanged(a *netlink.LinkAttrs, deleted bool) bool {
	prev, known := w.links[a.Name]
	switch {
	case deleted:
		delete(w.links, a.Name)
		return known || owned(a.Alias)
	case !owned(a.Alias):
		delete(w.links, a.Name)
		return known
	}
	cur := factsOf(a)
	w.links[a.Name] = cur
	return !known || cur != prev
}

// sysctlsChanged reads the sysctls again and reports whether any differs from the last read.
func (w *watchState) sysctlsChanged() bool {
	cur := w.read()
	diff := cur != w.last
	w.last = cur
	return diff
}

func (w *watchState) read() string {
	paths := []string{ipForward, "/proc/sys/net/ipv4/conf/all/send_redirects"}
	for _, name := range slices.Sorted(maps.Keys(w.links)) {
		paths = append(paths, filepath.Join("/proc/sys/net/ipv4/conf", name, "send_redirects"))
	}
	var b strings.Builder
	_ = w.h.inNS(func() error {
		for _, p := range paths {
			v, _ := os.ReadFile(p) // a link that just went reads as empty: a change too
			fmt.Fprintf(&b, "%s=%s;", p, strings.TrimSpace(string(v)))
		}
		return nil
	})
	return b.String()
}

// nftLasting opens a lasting nftables connection (a monitor needs one) in the Host's
// namespace.
func (h *Host) nftLasting() (*nftables.Conn, error) {
	if h.ns.IsOpen() {
		return nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(int(h.ns)))
	}
	return nftables.New(nftables.AsLasting())
}

// ours reports whether an nftables event concerns ovsmesh's table.
func ours(e *nftables.MonitorEvent) bool {
	switch d := e.Data.(type) {
	case *nftables.Table:
		return d.Name == NFTTable
	case *nftables.Chain:
		return d.Table != nil && d.Table.Name == NFTTable
	case *nftables.Rule:
		return d.Table != nil && d.Table.Name == NFTTable
	}
	return e.Type == nftables.MonitorEventTypeOOB // the monitor lost events: look again
}
