package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
)

// Input is everything that varies per node in the conflist. The agent fills it from the
// NetworkCluster and the node's NodeSubnet.
type Input struct {
	// Name is the network name (default DefaultNetworkName). host-local keys its store by it.
	Name string
	// CNIVersion is "1.0.0" or "1.1.0" (default). 1.1.0 enables STATUS and GC; use 1.0.0 when
	// a chained plugin (Debian's portmap 1.1.1, for one) does not speak 1.1.0.
	CNIVersion string
	// Bridge is the Linux bridge pods attach to (kbr0).
	Bridge string
	// Subnet is this node's pod subnet, e.g. 10.244.1.0/24.
	Subnet netip.Prefix
	// Gateway is the bridge's address inside Subnet, e.g. 10.244.1.1.
	Gateway netip.Addr
	// ClusterCIDR, when valid, adds a route to it via the gateway (e.g. 10.244.0.0/16); it
	// must contain Subnet. The default route via the gateway is always written.
	ClusterCIDR netip.Prefix
	// MTU for pod interfaces; 0 leaves it out and the plugin uses the bridge's MTU.
	MTU int
	// Portmap chains the standard portmap plugin for hostPort support.
	Portmap bool
	// IPAMDataDir overrides host-local's dataDir (default HostLocalDefaultDataDir).
	IPAMDataDir string
	// IPAMType and PortmapPlugin are the plugin types of host-local and portmap (defaults
	// "host-local" and "portmap"; the agent names its own copies, HostLocalType and
	// PortmapType).
	IPAMType      string
	PortmapPlugin string
}

// conflist is the file layout. Plugins are raw so each entry marshals with its own type.
type conflist struct {
	CNIVersion string            `json:"cniVersion"`
	Name       string            `json:"name"`
	Plugins    []json.RawMessage `json:"plugins"`
}

type portmapConf struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
}

// Render returns the node's conflist: the ovsmesh plugin with a host-local ipam section
// (one range = the node subnet, routes to the cluster CIDR and default via the gateway),
// optionally followed by portmap. It is pure and deterministic, so the agent can compare
// the bytes with the file on disk and write only on change.
func Render(in Input) ([]byte, error) {
	in, err := defaults(in)
	if err != nil {
		return nil, err
	}
	ipam := IPAM{
		Type:    in.IPAMType,
		Ranges:  [][]Range{{{Subnet: in.Subnet.String(), Gateway: in.Gateway.String()}}},
		DataDir: in.IPAMDataDir,
	}
	if in.ClusterCIDR.IsValid() {
		ipam.Routes = append(ipam.Routes, Route{Dst: in.ClusterCIDR.String()})
	}
	ipam.Routes = append(ipam.Routes, Route{Dst: "0.0.0.0/0"})

	self, err := json.Marshal(NetConf{Type: PluginType, Bridge: in.Bridge, MTU: in.MTU, IPAM: ipam})
	if err != nil {
		return nil, err
	}
	list := conflist{CNIVersion: in.CNIVersion, Name: in.Name, Plugins: []json.RawMessage{self}}
	if in.Portmap {
		pm, err := json.Marshal(portmapConf{Type: in.PortmapPlugin, Capabilities: map[string]bool{"portMappings": true}})
		if err != nil {
			return nil, err
		}
		list.Plugins = append(list.Plugins, pm)
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// defaults fills in defaults and validates; errors name the Input field.
func defaults(in Input) (Input, error) {
	if in.Name == "" {
		in.Name = DefaultNetworkName
	}
	if in.CNIVersion == "" {
		in.CNIVersion = DefaultCNIVersion
	}
	if in.IPAMType == "" {
		in.IPAMType = "host-local"
	}
	if in.PortmapPlugin == "" {
		in.PortmapPlugin = "portmap"
	}
	switch {
	case in.CNIVersion != "1.0.0" && in.CNIVersion != "1.1.0":
		return in, fmt.Errorf("CNIVersion %q: ovsmesh supports 1.0.0 and 1.1.0", in.CNIVersion)
	case !validNetworkName(in.Name):
		return in, fmt.Errorf("Name %q: must start with a letter or digit and contain only letters, digits, '_', '.' and '-'", in.Name)
	case !validIfName(in.Bridge):
		return in, fmt.Errorf("Bridge %q: not a valid interface name (1-15 characters, no '/', ':' or whitespace)", in.Bridge)
	case !in.Subnet.IsValid() || !in.Subnet.Addr().Is4():
		return in, fmt.Errorf("Subnet %v: an IPv4 prefix such as 10.244.1.0/24 is required", in.Subnet)
	case in.Subnet.Masked() != in.Subnet:
		return in, fmt.Errorf("Subnet %v has host bits set; did you mean %v?", in.Subnet, in.Subnet.Masked())
	case in.Subnet.Bits() > 30:
		return in, fmt.Errorf("Subnet %v: too small for a gateway and a pod (at most /30)", in.Subnet)
	case !in.Gateway.IsValid() || !in.Subnet.Contains(in.Gateway):
		return in, fmt.Errorf("Gateway %v: must be an address inside Subnet %v", in.Gateway, in.Subnet)
	case in.Gateway == in.Subnet.Addr() || in.Gateway == BroadcastAddr(in.Subnet):
		return in, fmt.Errorf("Gateway %v: the network and broadcast addresses of %v cannot be a gateway", in.Gateway, in.Subnet)
	case in.ClusterCIDR.IsValid() && (in.ClusterCIDR.Bits() > in.Subnet.Bits() || !in.ClusterCIDR.Contains(in.Subnet.Addr())):
		return in, fmt.Errorf("ClusterCIDR %v must contain Subnet %v", in.ClusterCIDR, in.Subnet)
	case in.ClusterCIDR.IsValid() && in.ClusterCIDR.Masked() != in.ClusterCIDR:
		return in, fmt.Errorf("ClusterCIDR %v has host bits set; did you mean %v?", in.ClusterCIDR, in.ClusterCIDR.Masked())
	case in.MTU != 0 && (in.MTU < MinMTU || in.MTU > MaxMTU):
		return in, fmt.Errorf("MTU %d: 0 (use the bridge's MTU) or %d-%d", in.MTU, MinMTU, MaxMTU)
	case in.IPAMDataDir != "" && !filepath.IsAbs(in.IPAMDataDir):
		return in, fmt.Errorf("IPAMDataDir %q: must be an absolute path", in.IPAMDataDir)
	}
	return in, nil
}

// BroadcastAddr is the broadcast (highest) address of an IPv4 prefix.
func BroadcastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// validNetworkName mirrors libcni's network name rule (utils.ValidateNetworkName).
func validNetworkName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return false
		}
	}
	return true
}
