// Package plugin is the ovsmesh CNI plugin: it attaches a pod to the node's Linux bridge
// (kbr0) with a veth pair and delegates addresses to an IPAM plugin (host-local, as written
// by the agent), like the reference bridge plugin but without creating the bridge, gateway
// address or masquerade rules, all of which belong to the node agent.
//
// Verbs (spec 1.0.0 and 1.1.0, through skel):
//   - ADD: veth pair, pod end named CNI_IFNAME with the configured MTU inside the pod netns,
//     host end "veth"+hash(containerID, ifname) on the bridge, tagged with the link alias
//     "ovsmesh/<network>/<containerID>/<ifname>" so GC can find it; IPAM ADD; addresses,
//     routes and a default route via the gateway. Any failure undoes everything done so far
//     (veth deleted, IPAM DEL issued), so a failed ADD leaks neither a link nor an IP.
//   - DEL: idempotent. Missing netns, missing links and repeated calls succeed; IPAM DEL is
//     always issued so the address is released.
//   - CHECK: the pod interface exists with prevResult's MAC, addresses and routes; its veth
//     peer is the expected host link, which is on the bridge.
//   - STATUS: code 50 while the bridge is missing or the IPAM plugin cannot be found;
//     forwarded to IPAM when the IPAM plugin speaks 1.1.0.
//   - GC: deletes tagged host veths of attachments not in cni.dev/valid-attachments and
//     releases their addresses (see "IPAM plugins older than 1.1.0").
//
// # IPAM plugins older than 1.1.0
//
// Debian's host-local (containernetworking-plugins 1.1.1) supports spec versions up to
// 1.0.0 and has neither STATUS nor GC. ADD, DEL and CHECK are sent at the network's own
// version; only when the IPAM plugin refuses it (code 1) does the plugin ask for its
// versions (VERSION) and retry once at the highest version it supports that is not newer
// than the network's, converting prevResult down and the IPAM result up (the 1.0.0 and
// 1.1.0 result formats are the same). The agent renders the conflist at a version its
// plugins share, so the usual ADD costs one IPAM exec. STATUS and GC ask VERSION first:
// they are forwarded only when the IPAM plugin supports 1.1.0. For GC with host-local, the plugin also reads
// host-local's store (<dataDir>/<network>/<ip>, each file holding "containerID\r\nifname")
// and issues an IPAM DEL for every reservation whose attachment is not valid, which is
// exactly what a host-local GC would release. It does so whatever host-local's version:
// upstream host-local up to at least v1.9.1 claims 1.1.0 but has no GC handler, so its
// skel acknowledges GC and releases nothing.
package plugin

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/go-logr/logr"
)

// SupportedVersions are the CNI spec versions the plugin implements.
var SupportedVersions = version.PluginSupports("1.0.0", "1.1.0")

// Plugin carries what every verb needs. Log goes to stderr (stdout is the CNI result).
type Plugin struct {
	Log logr.Logger
}

// Funcs returns the skel callbacks for all verbs; VERSION is answered by skel itself.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// joinErrors reports the errors of a verb that keeps going after a failure (DEL, GC). One
// error is returned as is, keeping its CNI code; several become one code-999 error listing
// them all, because skel would print only the first CNI error found in a joined error.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("%d errors", len(errs)), errors.Join(errs...).Error())
}
