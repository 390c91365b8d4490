package hostnet

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// Watch calls changed whenever the kernel reports something that can undo what the agent
// keeps on the host: one of its links (alias "ovsmesh": the Linux bridge and both veth ends)
// changing (up/down, MTU, master) or going;
// an IPv4 address or route being added or removed anywhere; any change to ovsmesh's
// nftables table (including its deletion). Events carry nothing the caller uses: the agent's
// loop is level-triggered and re-reads everything, so a burst of events is one pass. Other
// links' churn (every pod's veth, whose alias names its attachment) is filtered out. It works in the network namespace of the
// calling process, returns once the subscriptions are in place (an error if one cannot be
// made), and stops when ctx ends. It watches the Host's namespace (the caller's own for New).
//
// This turns drift (someone deleting the masquerade table or setting kbr0 down) into a
// repair within milliseconds instead of at the next periodic resync.
func (h *Host) Watch(ctx context.Context, changed func()) error {
	done := make(chan struct{})
	nsh := h.ns
	stop := func() { close(done) }
	var errs []error
	onErr := func(err error) { errs = append(errs, err) }

	links := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{Namespace: &nsh, ErrorCallback: func(error) {}}); err != nil {
		onErr(fmt.Errorf("subscribing to link changes: %w", err))
	}
	addrs := make(chan netlink.AddrUpdate, 64)
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: &nsh, ErrorCallback: func(error) {}}); err != nil {
		onErr(fmt.Errorf("subscribing to address changes: %w", err))
	}
	routes := make(chan netlink.RouteUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: &nsh, ErrorCallback: func(error) {}}); err != nil {
		onErr(fmt.Errorf("subscribing to route changes: %w", err))
	}
	nft, err := h.nftLasting()
	var nftEvents chan *nftables.MonitorEvent
	var mon *nftables.Monitor
	if err == nil {
		mon = nftables.NewMonitor(nftables.WithMonitorObject(nftables.MonitorObjectTables|nftables.MonitorObjectChains|nftables.MonitorObjectRules),
			nftables.WithMonitorEventBuffer(64))
		nftEvents, err = nft.AddMonitor(mon)
	}
	if err != nil {
		onErr(fmt.Errorf("subscribing to nftables changes: %w", err))
	}
	if len(errs) > 0 {
		stop()
		if mon != nil {
			_ = mon.Close()
		}
		if nft != nil {
			_ = nft.CloseLasting()
		}
		return errors.Join(errs...)
	}

	go func() {
		defer func() {
			_ = mon.Close()
			_ = nft.CloseLasting()
		}()
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-links:
				if !ok {
					return
				}
				if u.Link != nil && u.Link.Attrs().Alias == Alias {
					changed()
				}
			case u, ok := <-addrs:
				if !ok {
					return
				}
				if u.LinkAddress.IP.To4() != nil {
					changed()
				}
			case u, ok := <-routes:
				if !ok {
					return
				}
				if u.Route.Family == netlink.FAMILY_V4 {
					changed()
				}
			case e, ok := <-nftEvents:
				if !ok {
					return
				}
				if ours(e) {
					changed()
				}
			}
		}
	}()
	return nil
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
