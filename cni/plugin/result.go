package plugin

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
)

// Index of each interface in the ADD result; the order is the reference bridge plugin's.
const (
	ifBridge = iota
	ifHost
	ifPod
)

// attachedLinks describes the links ADD made, as they are after creation.
type attachedLinks struct {
	Bridge, BridgeMAC string
	Host, HostMAC     string
	Pod, PodMAC       string
	Sandbox           string // the pod netns path
	MTU               int
}

// buildResult merges the IPAM result with the links into the ADD result: every address is
// on the pod interface, every route without a gateway gets the gateway of its family
// (so the result says exactly what is in the pod's table), and a default route via the
// gateway is added for each family that has none.
func buildResult(ipamRes *current.Result, l attachedLinks) (*current.Result, error) {
	if len(ipamRes.IPs) == 0 {
		return nil, fmt.Errorf("ipam returned no addresses")
	}
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			ifBridge: {Name: l.Bridge, Mac: l.BridgeMAC},
			ifHost:   {Name: l.Host, Mac: l.HostMAC, Mtu: l.MTU},
			ifPod:    {Name: l.Pod, Mac: l.PodMAC, Mtu: l.MTU, Sandbox: l.Sandbox},
		},
		DNS: ipamRes.DNS,
	}
	gw := map[bool]net.IP{} // keyed by "is IPv4"
	for _, ipc := range ipamRes.IPs {
		c := *ipc
		c.Interface = current.Int(ifPod)
		res.IPs = append(res.IPs, &c)
		v4 := c.Address.IP.To4() != nil
		if c.Gateway == nil {
			return nil, fmt.Errorf("ipam returned %s without a gateway; ovsmesh routes pod traffic via the bridge's address", c.Address.String())
		}
		if gw[v4] == nil {
			gw[v4] = c.Gateway
		}
	}
	hasDefault := map[bool]bool{}
	for _, r := range ipamRes.Routes {
		rc := r.Copy()
		v4 := rc.Dst.IP.To4() != nil
		if rc.GW == nil {
			rc.GW = gw[v4]
		}
		if ones, _ := rc.Dst.Mask.Size(); ones == 0 {
			hasDefault[v4] = true
		}
		res.Routes = append(res.Routes, rc)
	}
	for _, v4 := range []bool{true, false} {
		if gw[v4] == nil || hasDefault[v4] {
			continue
		}
		dst := net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		if v4 {
			dst = net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		}
		res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: gw[v4]})
	}
	return res, nil
}

// createResult decodes a result of any supported version into the current format.
func createResult(b []byte) (*current.Result, error) {
	r, err := create.CreateFromBytes(b)
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(r)
}
