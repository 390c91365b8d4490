package plugin

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/internal/ipmac"
)

// Add attaches the pod: veth pair, IPAM, addresses and routes. Every step registers its
// undo; if a later step fails the undos run in reverse, so a failed ADD leaves no veth and
// no reserved address behind.
func (p *Plugin) Add(args *skel.CmdArgs) (err error) {
	ctx := context.TODO()
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	br, podNS, ipamPl, err := openAttachment(conf, args)
	if err != nil {
		return err
	}
	defer podNS.Close()

	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				p.Log.Error(uerr, "rollback after failed ADD", "containerID", args.ContainerID, "ifname", args.IfName)
			}
		}
	}()

	att := attachment{Network: conf.Name, ContainerID: args.ContainerID, IfName: args.IfName}
	hostName := HostVethName(args.ContainerID, args.IfName)
	// The runtime never repeats ADD without DEL, so an interface of that name already in the
	// pod is a replay of a live attachment (or someone else's device): refuse, as the
	// reference bridge plugin does, and touch nothing — deleting it would cut a running pod
	// off. Nothing is registered for undo yet, so the error leaves everything as it was.
	if exists, err := podHasLink(podNS, args.IfName); err != nil {
		return err
	} else if exists {
		return types.NewError(types.ErrInternal, fmt.Sprintf(
			"interface %q already exists in the pod's network namespace: if it is this attachment, it is live; DEL it before adding it again", args.IfName), "")
	}
	// With no pod end, a host veth of this very attachment can only be left over from an ADD
	// that died half way, so it is removed, not reported.
	if err := removeHostVeth(att); err != nil {
		return err
	}
	mtu := podMTU(conf, br)
	host, err := createVeth(br, podNS, hostName, args.IfName, att.Alias(), mtu)
	if err != nil {
		return err
	}
	undo = append(undo, func() error { return deleteLink(hostName) })

	ipamRes, err := ipamPl.Add(ctx, args.StdinData, args)
	if err != nil {
		return err
	}
	undo = append(undo, func() error { return ipamPl.Del(ctx, args.StdinData, args) })

	var podMAC string
	err = podNS.Do(func(ns.NetNS) error {
		l, err := netlinksafe.LinkByName(args.IfName)
		if err != nil {
			return fmt.Errorf("looking up %s in the pod netns: %w", args.IfName, err)
		}
		// The pod end is still down: give it the MAC its address maps to (see ipmac), so a
		// reused address keeps every neighbour entry in the cluster valid.
		if mac := ipmac.FromIPv4(firstIPv4(ipamRes)); mac != nil {
			if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
				return fmt.Errorf("setting the MAC of %s in the pod netns to %s: %w", args.IfName, mac, err)
			}
			podMAC = mac.String()
			return nil
		}
		podMAC = l.Attrs().HardwareAddr.String()
		return nil
	})
	if err != nil {
		return err
	}
	brNow, err := netlinksafe.LinkByName(conf.Bridge) // its MAC can change when the first port joins
	if err != nil {
		return fmt.Errorf("looking up bridge %s: %w", conf.Bridge, err)
	}
	res, err := buildResult(ipamRes, attachedLinks{
		Bridge: conf.Bridge, BridgeMAC: brNow.Attrs().HardwareAddr.String(),
		Host: hostName, HostMAC: host.Attrs().HardwareAddr.String(),
		Pod: args.IfName, PodMAC: podMAC, Sandbox: args.Netns, MTU: mtu,
	})
	if err != nil {
		return err
	}
	if err := podNS.Do(func(ns.NetNS) error { return ipam.ConfigureIface(args.IfName, res) }); err != nil {
		return fmt.Errorf("configuring %s in the pod netns: %w", args.IfName, err)
	}
	return types.PrintResult(res, conf.CNIVersion)
}

// podHasLink reports whether the pod netns has a link of that name.
func podHasLink(podNS ns.NetNS, name string) (bool, error) {
	var exists bool
	err := podNS.Do(func(ns.NetNS) error {
		_, err := netlinksafe.LinkByName(name)
		switch {
		case err == nil:
			exists = true
		case isNotFound(err):
		default:
			return fmt.Errorf("looking up %s in the pod netns: %w", name, err)
		}
		return nil
	})
	return exists, err
}

// firstIPv4 is the first IPv4 address IPAM gave; the zero Addr when there is none.
func firstIPv4(r *current.Result) netip.Addr {
	for _, c := range r.IPs {
		if a, ok := netip.AddrFromSlice(c.Address.IP); ok && a.Unmap().Is4() {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
