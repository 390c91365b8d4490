// Package hostnet is the node agent's host-networking side-effect layer: the Linux bridge
// (kbr0), the veth pair to the OVS bridge, the cluster route, ip_forward and the masquerade
// rule. It talks to the kernel only through netlink (vishvananda/netlink, google/nftables),
// /proc/sys and one ethtool ioctl; it never executes ip, iptables, nft or ethtool.
//
// Every Ensure method is level-triggered and diff-based: it reads what exists, changes only
// what differs, and never deletes and recreates something that is already right, so an agent
// restart costs no traffic. Each returns a list of human-readable changes; an empty list means
// the host already matched. What ovsmesh creates carries the link alias "ovsmesh" so that
// Cleanup removes only what is ours.
package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
)

// Alias marks the links ovsmesh created (visible in `ip link` as "alias ovsmesh"): Cleanup
// deletes them.
const Alias = "ovsmesh"

// AliasAdopted marks a Linux bridge ovsmesh found empty and took over instead of creating
// it: it is kept up to date like one ovsmesh made, but Cleanup never deletes it (someone
// made it, perhaps a provisioning script that expects it) — it takes back only what it added
// (the gateway address, the route, this alias).
const AliasAdopted = "ovsmesh:adopted"

// RouteProtocol is the routing protocol id (rtm_protocol, `proto 77` in `ip route`) of the
// cluster route. With it, ovsmesh's route is recognisable as its own; a route to the same
// prefix that is not (another protocol, through another device) belongs to someone else and
// is never replaced or deleted. 77 is unassigned in iproute2's rt_protos.
const RouteProtocol = 77

// owned reports whether a link alias is one of ovsmesh's marks.
func owned(alias string) bool { return alias == Alias || alias == AliasAdopted }

// NFTTable is the nftables table (family ip) holding every ovsmesh rule, so cleanup is one
// table delete and `nft list table ip ovsmesh` shows everything ovsmesh does.
const NFTTable = "ovsmesh"

// Interface is the host side of the agent. The contract of each method is written on it;
// all of them are safe to call repeatedly with the same argument.
type Interface interface {
	// FindUnderlay returns the interface that carries the tunnels: the one named name when
	// name is set, else the one holding addr. It changes nothing. ErrNoUnderlay when neither
	// is found.
	FindUnderlay(name string, addr netip.Addr) (Underlay, error)

	// EnsureIPForwarding sets net.ipv4.ip_forward=1 when it is not already 1.
	EnsureIPForwarding() ([]string, error)

	// EnsureNoRedirects sets net.ipv4.conf.{all,dev}.send_redirects=0, so pods keep
	// routing through their gateway and path MTU discovery works (see the implementation).
	EnsureNoRedirects(dev string) ([]string, error)

	// EnsureBridge makes b.Name an up Linux bridge with MTU b.MTU holding b.Address. It
	// creates the bridge when missing (with a MAC derived from the address, so that pods'
	// ARP caches stay valid if it is ever recreated; alias Alias) and adopts an existing
	// bridge only when it is empty: no ports and no IPv4 address but b.Address (alias
	// AliasAdopted; Cleanup keeps it). It never removes an address: a bridge ovsmesh does not
	// own that has ports, a bridge holding a different IPv4 address, or a link of that name
	// that is not a bridge, is a *ConflictError and is left untouched.
	EnsureBridge(b Bridge) ([]string, error)

	// EnsureVethPair makes v.Name and v.PeerName the two ends of one veth pair, both up with
	// MTU v.MTU, v.PeerName enslaved to v.Master, and (when v.DisableOffloads) checksum,
	// TSO, GSO and GRO offloads off on both ends. A pair that is right is kept as is (same
	// ifindexes); MTU, up state, master and offloads are fixed in place. Ends that exist but
	// are not each other's peer are deleted and the pair recreated when they carry
	// ovsmesh's mark (left over from an earlier pair); an unmarked veth of either name, or a
	// link of either name that is not a veth, is a *ConflictError and is left alone. The
	// master of v.Name is never touched: it belongs to OVS (ovs-system with the kernel
	// datapath).
	EnsureVethPair(v VethPair) ([]string, error)

	// EnsureRoute makes the main table hold exactly one route to r.Dst: scope link through
	// r.Dev, protocol RouteProtocol. It first looks at every route to r.Dst: one that is not
	// ovsmesh's (neither through r.Dev nor of RouteProtocol — a route the host or another
	// program made) is a *ConflictError naming it, and nothing is changed. Of ovsmesh's own,
	// a right route is kept; a wrong one is replaced atomically (RTM_NEWROUTE with
	// NLM_F_REPLACE, no window without a route) and extra ones are removed.
	EnsureRoute(r Route) ([]string, error)

	// EnsureMasquerade makes table ip ovsmesh hold exactly one postrouting NAT chain with one
	// rule "ip saddr CIDR ip daddr != CIDR masquerade" (identified by its comment) when
	// m.Enabled, and makes the table absent when not. A table that does not match exactly is
	// replaced in one atomic nftables batch (delete + add), so there is no moment without
	// the rule.
	EnsureMasquerade(m Masquerade) ([]string, error)

	// LinkIndex returns the ifindex of the link named name, or 0 when there is none. It
	// changes nothing. A veth made anew has a new index: the OVS side compares it with the
	// one ovs-vswitchd opened (see agent.OVSState.VethIfindex).
	LinkIndex(name string) (int, error)

	// Cleanup removes the masquerade table, the veth pair, the route and the bridge named in
	// n, each only when it exists and is ovsmesh's (links only when they carry its mark). A
	// bridge ovsmesh adopted (AliasAdopted) is kept: only the route through it, its addresses
	// inside n.RouteDst (the gateway) and the mark are removed. Missing objects are not
	// errors: Cleanup is idempotent. It leaves
	// ip_forward and send_redirects as they are, since other software on the node may rely
	// on them.
	Cleanup(n Names) ([]string, error)
}

// Apply brings the host to s through h, in dependency order: ip_forward, bridge, no ICMP
// redirects on it, veth (needs the bridge), route (needs the bridge up), masquerade. It
// stops at the first error and returns the changes made so far.
func Apply(h Interface, s State) ([]string, error) {
	var all []string
	steps := []func() ([]string, error){
		h.EnsureIPForwarding,
		func() ([]string, error) { return h.EnsureBridge(s.Bridge) },
		func() ([]string, error) { return h.EnsureNoRedirects(s.Bridge.Name) },
		func() ([]string, error) { return h.EnsureVethPair(s.Veth) },
		func() ([]string, error) { return h.EnsureRoute(s.Route) },
		func() ([]string, error) { return h.EnsureMasquerade(s.Masquerade) },
	}
	for _, step := range steps {
		ch, err := step()
		all = append(all, ch...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// ErrNoUnderlay means no interface holds the node's underlay address.
var ErrNoUnderlay = errors.New("no interface holds the node IP")

// ConflictError is something on the host that ovsmesh must not take over: a kbr0 with another
// address, or a link of one of ovsmesh's names with the wrong type. The agent reports it in
// the Ready condition and retries, leaving the object alone.
type ConflictError struct {
	Link string
	What string
}

func (e *ConflictError) Error() string { return fmt.Sprintf("%s: %s", e.Link, e.What) }
