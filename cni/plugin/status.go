package plugin

import (
	"context"
	"errors"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// Status reports whether ADD can succeed now: the bridge must exist (the agent creates it
// when it has set the node up) and the IPAM plugin must be installed. STATUS is forwarded
// to the IPAM plugin when it speaks 1.1.0; an older one (Debian's host-local) has no
// STATUS to forward to. Failures carry the spec's code 50, "plugin not available".
func (p *Plugin) Status(args *skel.CmdArgs) error {
	ctx := context.TODO()
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := lookupBridge(conf.Bridge); err != nil {
		return notAvailable(err)
	}
	ipamPl, err := findIPAM(conf.IPAM.Type, args.Path, conf.CNIVersion)
	if err != nil {
		return notAvailable(err)
	}
	speaks11, err := ipamPl.SupportsStatusAndGC(ctx)
	if err != nil {
		return notAvailable(err)
	}
	if speaks11 {
		return ipamPl.Status(ctx, args.StdinData)
	}
	return nil
}

// notAvailable turns the reason ADD would fail into STATUS's code 50, keeping the reason.
func notAvailable(err error) error {
	msg := err.Error()
	var te *types.Error
	if errors.As(err, &te) {
		msg = te.Msg
		if te.Details != "" {
			msg += ": " + te.Details
		}
	}
	return types.NewError(config.ErrPluginNotAvailable, "plugin not available", msg)
}
