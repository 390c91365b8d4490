package plugin

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// GC removes what belongs to attachments of this network that are not in
// cni.dev/valid-attachments: host veths tagged with the network's alias (their pod ends
// go with them) and IPAM reservations. As the spec asks, it keeps going after an error and
// reports all of them at the end.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	ctx := context.TODO()
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	// The runtime names what is still in use; an empty list means nothing is. A GC without
	// the key at all is not an empty list: it says nothing, so nothing is removed.
	if !hasKey(args.StdinData, "cni.dev/valid-attachments") {
		return types.NewError(types.ErrInvalidNetworkConfig,
			"GC without cni.dev/valid-attachments: the runtime must say which attachments are still in use; nothing removed", "")
	}
	valid := map[attachmentKey]bool{}
	validIDs := map[string]bool{}
	for _, a := range conf.ValidAttachments {
		valid[attachmentKey{a.ContainerID, a.IfName}] = true
		validIDs[a.ContainerID] = true
	}

	errs := p.gcLinks(conf.Name, valid)

	ipamPl, err := findIPAM(conf.IPAM.Type, args.Path, conf.CNIVersion)
	if err != nil {
		return joinErrors(append(errs, err))
	}
	speaks11, err := ipamPl.SupportsStatusAndGC(ctx)
	if err != nil {
		return joinErrors(append(errs, err))
	}
	forward, readStore := gcPlan(conf.IPAM.Type, speaks11)
	if forward {
		if err := ipamPl.GC(ctx, args.StdinData); err != nil {
			errs = append(errs, err)
		}
	}
	if readStore {
		errs = append(errs, p.gcHostLocal(ctx, ipamPl, conf, args, valid, validIDs)...)
	}
	if !forward && !readStore {
		p.Log.Info("ipam plugin has no GC and its store is unknown to ovsmesh; stale reservations stay until DEL",
			"ipam", conf.IPAM.Type, "versions", ipamPl.Info)
	}
	return joinErrors(errs)
}

// hasKey reports whether the JSON object has the top-level key.
func hasKey(raw []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// gcPlan decides how GC reaches the IPAM plugin: forward GC when it speaks 1.1.0, and for
// host-local also release stale reservations from its store. The second is needed even for
// a host-local that claims 1.1.0: up to at least containernetworking-plugins v1.9.1 it
// registers no GC handler, so skel answers GC with success and releases nothing. Doing
// both is safe: an address the IPAM's own GC released is no longer in the store.
func gcPlan(ipamType string, supports11 bool) (forward, readStore bool) {
	return supports11, ipamType == "host-local" || ipamType == config.HostLocalType
}

// gcLinks deletes the host veths tagged for network whose attachment is not valid.
func (p *Plugin) gcLinks(network string, valid map[attachmentKey]bool) []error {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return []error{fmt.Errorf("listing links: %w", err)}
	}
	var errs []error
	for _, l := range links {
		a, ok := parseAlias(l.Attrs().Alias)
		if _, veth := l.(*netlink.Veth); !ok || !veth || a.Network != network || valid[attachmentKey{a.ContainerID, a.IfName}] {
			continue
		}
		if err := deleteLink(l.Attrs().Name); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Log.Info("GC deleted the veth of a stale attachment", "link", l.Attrs().Name, "containerID", a.ContainerID, "ifname", a.IfName)
	}
	return errs
}

// gcHostLocal does host-local's missing GC: every reservation in its store that no valid
// attachment holds is released with an IPAM DEL for that attachment, exactly what DEL
// would have released.
func (p *Plugin) gcHostLocal(ctx context.Context, ipamPl *ipamPlugin, conf *config.NetConf, args *skel.CmdArgs,
	valid map[attachmentKey]bool, validIDs map[string]bool) []error {
	dir := hostLocalStoreDir(conf.IPAM.DataDir, conf.Name)
	res, err := readHostLocalStore(dir)
	if err != nil {
		return []error{fmt.Errorf("reading host-local store %s: %w", dir, err)}
	}
	var errs []error
	for _, r := range staleReservations(res, valid, validIDs) {
		ifName := r.IfName
		if ifName == "" {
			ifName = "eth0" // old-format reservation: host-local releases it by container ID alone
		}
		delArgs := &skel.CmdArgs{ContainerID: r.ContainerID, IfName: ifName, Path: args.Path}
		if err := ipamPl.Del(ctx, args.StdinData, delArgs); err != nil {
			errs = append(errs, fmt.Errorf("releasing %s of %s/%s: %w", r.IP, r.ContainerID, r.IfName, err))
			continue
		}
		p.Log.Info("GC released the address of a stale attachment", "ip", r.IP, "containerID", r.ContainerID, "ifname", r.IfName)
	}
	return errs
}
