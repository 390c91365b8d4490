package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// Check verifies the attachment against prevResult: IPAM still holds the address; the pod
// interface exists with the recorded MAC, MTU, addresses and routes; its veth peer is the
// host veth of this attachment, which is on the bridge and up.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	ctx := context.TODO()
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	prev, err := prevResult(conf)
	if err != nil {
		return err
	}
	br, podNS, ipamPl, err := openAttachment(conf, args)
	if err != nil {
		return err
	}
	defer podNS.Close()
	if err := ipamPl.Check(ctx, args.StdinData, args); err != nil {
		return err
	}

	podIf, podIdx := findInterface(prev, args.IfName, args.Netns)
	if podIf == nil {
		return fmt.Errorf("prevResult has no interface %q in sandbox %q", args.IfName, args.Netns)
	}
	hostName := HostVethName(args.ContainerID, args.IfName)
	var podIPs []*current.IPConfig
	for _, c := range prev.IPs {
		if c.Interface != nil && *c.Interface == podIdx {
			podIPs = append(podIPs, c)
		}
	}

	var peerIndex int
	err = podNS.Do(func(ns.NetNS) error {
		l, err := netlinksafe.LinkByName(args.IfName)
		if err != nil {
			return fmt.Errorf("pod interface %s: %w", args.IfName, err)
		}
		if _, ok := l.(*netlink.Veth); !ok {
			return fmt.Errorf("pod interface %s is a %s link, not a veth", args.IfName, l.Type())
		}
		if podIf.Mac != "" && l.Attrs().HardwareAddr.String() != podIf.Mac {
			return fmt.Errorf("pod interface %s has MAC %s, prevResult says %s", args.IfName, l.Attrs().HardwareAddr, podIf.Mac)
		}
		if want := podMTU(conf, br); l.Attrs().MTU != want {
			return fmt.Errorf("pod interface %s has MTU %d, want %d", args.IfName, l.Attrs().MTU, want)
		}
		peerIndex = l.Attrs().ParentIndex // a veth's IFLA_LINK: its peer's ifindex in the peer's netns
		if err := ip.ValidateExpectedInterfaceIPs(args.IfName, podIPs); err != nil {
			return err
		}
		for _, r := range prev.Routes {
			if err := ip.ValidateExpectedRoute([]*types.Route{r}); err != nil {
				return fmt.Errorf("route %s via %s from prevResult is missing in the pod netns", r.Dst.String(), r.GW)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	host, err := netlinksafe.LinkByName(hostName)
	if err != nil {
		return fmt.Errorf("host veth %s of %s/%s: %w", hostName, args.ContainerID, args.IfName, err)
	}
	switch {
	case host.Attrs().Index != peerIndex:
		return fmt.Errorf("pod interface %s is not paired with host veth %s", args.IfName, hostName)
	case host.Attrs().MasterIndex != br.Attrs().Index:
		return fmt.Errorf("host veth %s is not on bridge %s", hostName, conf.Bridge)
	case host.Attrs().Flags&net.FlagUp == 0:
		return fmt.Errorf("host veth %s is down", hostName)
	}
	return nil
}

// prevResult decodes the runtime-injected prevResult into the current result type.
func prevResult(conf *config.NetConf) (*current.Result, error) {
	if conf.RawPrevResult == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			"prevResult is required: CHECK compares the attachment with the result of its ADD", "")
	}
	raw := conf.RawPrevResult
	if _, ok := raw["cniVersion"]; !ok {
		raw["cniVersion"] = conf.CNIVersion
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	r, err := createResult(b)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "prevResult does not decode", err.Error())
	}
	return r, nil
}

// findInterface returns the result's interface named name in sandbox, and its index.
func findInterface(r *current.Result, name, sandbox string) (*current.Interface, int) {
	for i, intf := range r.Interfaces {
		if intf.Name == name && intf.Sandbox == sandbox {
			return intf, i
		}
	}
	return nil, -1
}
