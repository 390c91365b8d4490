package plugin

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// lookupBridge returns the bridge in the current (host) netns. Errors are *types.Error:
// code 11 (try again later) when it does not exist, because the agent creates it once it
// has set the node up; 7 when the name belongs to a link that is not a bridge.
func lookupBridge(name string) (*netlink.Bridge, error) {
	l, err := netlinksafe.LinkByName(name)
	if isNotFound(err) {
		return nil, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("bridge %q does not exist: the ovsmesh agent has not set up this node yet, or \"bridge\" names the wrong link", name), "")
	}
	if err != nil {
		return nil, fmt.Errorf("looking up bridge %q: %w", name, err)
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("%q is a %s link, not a bridge: \"bridge\" must name the node's pod bridge", name, l.Type()), "")
	}
	return br, nil
}

// openNetNS opens the pod netns; a path that does not exist is the spec's code 3 (unknown
// container: nothing was created, so the runtime need not clean up).
func openNetNS(path string) (ns.NetNS, error) {
	n, err := ns.GetNS(path)
	if err == nil {
		return n, nil
	}
	var notExist ns.NSPathNotExistErr
	if errors.As(err, &notExist) {
		return nil, types.NewError(types.ErrUnknownContainer, fmt.Sprintf("network namespace %q does not exist", path), err.Error())
	}
	return nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("CNI_NETNS %q is not a network namespace", path), err.Error())
}

// createVeth creates the pair from the host netns: hostName here, podName directly inside
// pod (so there is never a moment with both ends in one namespace and no rename is needed),
// both with mtu, the host end tagged with alias and put on br and up. On error the host end
// (and with it the pod end) is deleted.
func createVeth(br *netlink.Bridge, pod ns.NetNS, hostName, podName, alias string, mtu int) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.MTU = mtu
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: podName, PeerNamespace: netlink.NsFd(int(pod.Fd())), PeerMTU: uint32(mtu), PeerTxQLen: -1}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("creating veth %s (pod end %q): a link with one of these names already exists: %w", hostName, podName, err)
		}
		return nil, fmt.Errorf("creating veth %s (pod end %q): %w", hostName, podName, err)
	}
	host, err := setupHostEnd(br, hostName, alias)
	if err != nil {
		_ = deleteLink(hostName)
		return nil, err
	}
	return host, nil
}

func setupHostEnd(br *netlink.Bridge, name, alias string) (netlink.Link, error) {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("looking up new veth %s: %w", name, err)
	}
	if err := netlink.LinkSetAlias(l, alias); err != nil {
		return nil, fmt.Errorf("tagging %s with alias %q: %w", name, alias, err)
	}
	if err := netlink.LinkSetMaster(l, br); err != nil {
		return nil, fmt.Errorf("adding %s to bridge %s: %w", name, br.Name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("setting %s up: %w", name, err)
	}
	return netlinksafe.LinkByName(name) // refetched: MAC and master as they are now
}

// removeHostVeth deletes the host veth of a, if it is there and is ours: its alias is a's,
// or it has no alias yet (an ADD that crashed between creating and tagging it; the name is
// a hash of a's identity, so it cannot be anyone else's). Deleting one end of a veth
// deletes the pod end too.
func removeHostVeth(a attachment) error {
	name := HostVethName(a.ContainerID, a.IfName)
	l, err := netlinksafe.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return fmt.Errorf("%s is a %s link, not the veth ovsmesh created; leaving it alone", name, l.Type())
	}
	if alias := l.Attrs().Alias; alias != "" && alias != a.Alias() {
		return fmt.Errorf("%s belongs to another attachment (alias %q); leaving it alone", name, alias)
	}
	return deleteLink(name)
}

// deleteLink deletes a link by name in the current netns; a missing link is success.
func deleteLink(name string) error {
	l, err := netlinksafe.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// isNotFound reports a missing link, including one that vanished mid-call (its netns being
// torn down by the kernel, for instance).
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENOENT)
}

// podMTU is the configured MTU, or the bridge's when none is configured.
func podMTU(conf *config.NetConf, br *netlink.Bridge) int {
	if conf.MTU > 0 {
		return conf.MTU
	}
	return br.Attrs().MTU
}

// openAttachment opens what ADD and CHECK both need, in the order that reports the most
// useful error first: the bridge (missing: try again later, the agent is not done), the pod's
// network namespace, then the IPAM plugin. The caller closes the namespace.
func openAttachment(conf *config.NetConf, args *skel.CmdArgs) (*netlink.Bridge, ns.NetNS, *ipamPlugin, error) {
	br, err := lookupBridge(conf.Bridge)
	if err != nil {
		return nil, nil, nil, err
	}
	podNS, err := openNetNS(args.Netns)
	if err != nil {
		return nil, nil, nil, err
	}
	ipamPl, err := findIPAM(conf.IPAM.Type, args.Path, conf.CNIVersion)
	if err != nil {
		podNS.Close()
		return nil, nil, nil, err
	}
	return br, podNS, ipamPl, nil
}
