package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// Del detaches the pod. It is idempotent, as the spec requires: a netns that is gone, links
// that are gone and a DEL repeated any number of times all succeed. The links are found
// without the netns (the host veth's name is derived from the attachment), and IPAM DEL is
// issued unconditionally so the address is released even if the links vanished with the
// netns.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	ctx := context.TODO()
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	att := attachment{Network: conf.Name, ContainerID: args.ContainerID, IfName: args.IfName}

	// IPAM DEL (an exec of the IPAM plugin) and the link deletion (which waits for the
	// kernel to retire the veth pair) do not depend on each other, so they run side by side.
	// The netns switch below pins its own OS thread; the exec happens on another one, in the
	// node's namespace, where the IPAM plugin belongs.
	ipamDone := make(chan error, 1)
	if ipamPl, err := findIPAM(conf.IPAM.Type, args.Path, conf.CNIVersion); err != nil {
		ipamDone <- err // the links still go
	} else {
		go func() { ipamDone <- ipamPl.Del(ctx, args.StdinData, args) }()
	}

	var errs []error
	podVethDeleted := false
	if args.Netns != "" {
		err := ns.WithNetNSPath(args.Netns, func(ns.NetNS) (err error) {
			podVethDeleted, err = deletePodVeth(args.IfName)
			return err
		})
		// A path that is gone, or left as a plain file after the runtime unmounted the
		// netns, means the pod end went with the namespace.
		var notExist ns.NSPathNotExistErr
		var notNS ns.NSPathNotNSErr
		if err != nil && !errors.As(err, &notExist) && !errors.As(err, &notNS) {
			errs = append(errs, err)
		}
	}
	// Deleting the pod end took the host end with it; otherwise (no netns given, the pod end
	// already gone) a host end may be left over and is removed by its derived name.
	if !podVethDeleted {
		if err := removeHostVeth(att); err != nil {
			// Only a link that is not ours (see removeHostVeth) ends up here: keep it, say why.
			p.Log.Error(err, "host veth not removed", "containerID", args.ContainerID, "ifname", args.IfName)
		}
	}
	if err := <-ipamDone; err != nil {
		errs = append(errs, err)
	}
	return joinErrors(errs)
}

// deletePodVeth removes the pod end (and so the pair) in the current netns, if it is there
// and is a veth; deleted says whether it did.
func deletePodVeth(ifName string) (deleted bool, err error) {
	l, err := netlinksafe.LinkByName(ifName)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up %s in the pod netns: %w", ifName, err)
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return false, nil // not something ovsmesh created
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return false, fmt.Errorf("deleting %s in the pod netns: %w", ifName, err)
	}
	return true, nil
}
