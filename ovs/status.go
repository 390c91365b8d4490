package ovs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovsmesh/ovsmesh/ovs/model"
)

// PortState is the spanning-tree and BFD state ovs-vswitchd reports for a port. Fields
// are empty until ovs-vswitchd has written them (it refreshes status columns every few
// seconds) and when the feature is off.
type PortState struct {
	Name string
	// Owned: the port carries external_ids:ovsmesh.io/owner=ovsmesh.
	Owned bool
	// Peer is external_ids:ovsmesh.io/tunnel-peer (tunnels only).
	Peer string
	// InterfaceType and RemoteIP (options:remote_ip) of the port's interface.
	InterfaceType, RemoteIP string
	// STPState is Port status:stp_state (disabled, listening, learning, forwarding,
	// blocking) and STPRole status:stp_role (root, designated, alternate).
	STPState, STPRole string
	// RSTPState is Port rstp_status:rstp_port_state (Disabled, Discarding, Learning,
	// Forwarding) and RSTPRole rstp_status:rstp_port_role (Root, Designated, Alternate,
	// Backup, Disabled).
	RSTPState, RSTPRole string
	// BFDState is Interface bfd_status:state (admin_down, down, init, up) and
	// BFDForwarding bfd_status:forwarding.
	BFDState      string
	BFDForwarding bool
	// Error is the interface's error column (e.g. a device ovs-vswitchd could not open).
	Error string
	// Protected is Port.protected (split horizon).
	Protected bool
	// Live: ovs-vswitchd has set the interface up (it wrote a positive ofport). A port
	// that is in the database but not yet live carries no traffic.
	Live bool
}

// Forwarding reports whether the port forwards traffic by whichever protocol is on:
// STP forwarding, RSTP Forwarding, or, when neither reports a state, true.
func (s PortState) Forwarding() bool {
	switch {
	case s.STPState != "":
		return s.STPState == "forwarding"
	case s.RSTPState != "":
		return s.RSTPState == "Forwarding"
	}
	return true
}

// PortStates returns the state of every port on the bridge (ovsmesh's and others'),
// sorted by name; none when the bridge does not exist. ovs-vsctl equivalent:
//
//	ovs-vsctl --columns=name,status,rstp_status list Port
//	ovs-vsctl --columns=name,bfd_status list Interface
//
// (`ovs-appctl stp/show obr0`, `rstp/show` and `bfd/show` show the same from
// ovs-vswitchd itself).
func (c *Client) PortStates(ctx context.Context, bridge string) ([]PortState, error) {
	v, err := c.openBridge(ctx, nil, bridge, anyBridge|bridgePorts)
	if err != nil || v.Br == nil {
		return nil, err
	}
	out := make([]PortState, 0, len(v.Ports))
	for _, p := range v.Ports {
		s := PortState{
			Name: p.Port.Name, Owned: owned(p.Port.ExternalIDs), Peer: p.Port.ExternalIDs[TunnelPeerKey],
			STPState: p.Port.Status["stp_state"], STPRole: p.Port.Status["stp_role"],
			RSTPState: p.Port.RSTPStatus["rstp_port_state"], RSTPRole: p.Port.RSTPStatus["rstp_port_role"],
			Protected: p.Port.Protected,
		}
		if i := p.iface(); i != nil {
			s.InterfaceType, s.RemoteIP = i.Type, i.Options["remote_ip"]
			s.BFDState, s.BFDForwarding = i.BFDStatus["state"], i.BFDStatus["forwarding"] == "true"
			if i.Error != nil {
				s.Error = *i.Error
			}
			s.Live = i.Ofport != nil && *i.Ofport > 0
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b PortState) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// InterfaceIfindex returns the kernel ifindex ovs-vswitchd reports for the device it opened
// for the interface named name: 0 when there is no such interface or none is reported yet.
// One indexed cache lookup, unlike PortStates. ovs-vsctl equivalent:
//
//	ovs-vsctl get Interface vobr0 ifindex
func (c *Client) InterfaceIfindex(ctx context.Context, name string) (int, error) {
	if err := c.waitConnected(ctx); err != nil {
		return 0, err
	}
	i := &model.Interface{Name: name}
	if err := c.get(ctx, i); err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return 0, nil
		}
		return 0, fmt.Errorf("ovs: interface %s: %w", name, err)
	}
	if i.Ifindex == nil {
		return 0, nil
	}
	return *i.Ifindex, nil
}
