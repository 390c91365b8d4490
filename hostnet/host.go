package hostnet

import (
	"fmt"
	"runtime"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Host implements Interface against one network namespace.
type Host struct {
	nl *netlink.Handle
	// ns is the target namespace, or netns.None() for the caller's own.
	ns netns.NsHandle
}

var _ Interface = (*Host)(nil)

// New returns a Host working in the agent's own network namespace (the node's, since the
// agent runs with hostNetwork).
func New() (*Host, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Host{nl: h, ns: netns.None()}, nil
}

// NewAt returns a Host working in the network namespace ns (tests use it to program a
// namespace they made without moving the test process). The caller keeps ownership of ns.
func NewAt(ns netns.NsHandle) (*Host, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	return &Host{nl: h, ns: ns}, nil
}

// Close releases the netlink sockets.
func (h *Host) Close() { h.nl.Close() }

// nft opens an nftables connection in the target namespace.
func (h *Host) nft() (*nftables.Conn, error) {
	if h.ns.IsOpen() {
		return nftables.New(nftables.WithNetNSFd(int(h.ns)))
	}
	return nftables.New()
}

// inNS runs fn on an OS thread switched into the target namespace. Only what cannot be done
// through a namespace-bound netlink socket needs it: /proc/sys (resolved against the calling
// thread's namespace) and the ethtool ioctl (on a socket created there).
func (h *Host) inNS(fn func() error) error {
	if !h.ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked if switching back fails, so the Go runtime
		// discards it instead of reusing a thread stuck in the wrong namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(h.ns); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("returning to the original netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
