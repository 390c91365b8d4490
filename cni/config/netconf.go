// Package config defines the ovsmesh CNI network configuration: the NetConf the plugin reads
// on stdin and Render, the pure function the node agent calls to produce the node's
// conflist (/etc/cni/net.d/10-ovsmesh.conflist). Keeping both in one package means the
// writer (agent) and the reader (plugin) cannot drift apart.
package config

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

const (
	// PluginType is the plugin binary name and the "type" of its entry in the conflist.
	PluginType = "ovsmesh"
	// HostLocalType and PortmapType are the names under which the agent installs the
	// host-local and portmap it ships (containernetworking-plugins at go.mod's version,
	// which speak spec 1.1.0) and which its conflist names: a node's own, perhaps older,
	// copies (Debian's 1.1.1 stops at 1.0.0) are never used nor touched.
	HostLocalType = "ovsmesh-host-local"
	PortmapType   = "ovsmesh-portmap"
	// DefaultNetworkName is the conflist "name" when Input.Name is empty. host-local keeps
	// its reservations under <dataDir>/<network name>.
	DefaultNetworkName = "ovsmesh"
	// DefaultConfDir and ConfListFile say where the agent writes the conflist. The "10-"
	// prefix makes it sort before most other configs, since runtimes pick the first file.
	DefaultConfDir = "/etc/cni/net.d"
	ConfListFile   = "10-ovsmesh.conflist"
	// DefaultCNIVersion is the spec version Render writes when Input.CNIVersion is empty.
	DefaultCNIVersion = "1.1.0"
	// HostLocalDefaultDataDir is where host-local stores reservations when the ipam section
	// sets no dataDir. The plugin needs it to garbage-collect for host-local (see plugin docs).
	HostLocalDefaultDataDir = "/var/lib/cni/networks"

	// MinMTU and MaxMTU bound the configurable MTU: 68 is the IPv4 minimum (RFC 791), 65535
	// the largest value a veth accepts.
	MinMTU = 68
	MaxMTU = 65535
)

// NetConf is the ovsmesh plugin's configuration as the runtime passes it on stdin: the
// plugin's entry of the conflist with name and cniVersion injected (and prevResult,
// runtimeConfig or cni.dev/valid-attachments depending on the verb).
//
// It deliberately does not embed types.PluginConf: that type has a pointer MarshalJSON
// which, once promoted, would marshal only the embedded fields and silently drop Bridge
// and MTU.
type NetConf struct {
	CNIVersion   string          `json:"cniVersion,omitempty"`
	Name         string          `json:"name,omitempty"`
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`

	// Bridge is the Linux bridge (kbr0) the host side of every pod veth joins. The agent
	// creates it; the plugin never does, so a missing bridge means the node is not ready.
	Bridge string `json:"bridge"`
	// MTU of both veth ends; 0 means "use the bridge's MTU".
	MTU int `json:"mtu,omitempty"`
	// IPAM is the delegated IPAM plugin's section, passed to it verbatim.
	IPAM IPAM `json:"ipam"`

	// RawPrevResult is injected by the runtime for CHECK and DEL (and by chaining).
	RawPrevResult map[string]any `json:"prevResult,omitempty"`
	// ValidAttachments is injected by the runtime for GC only.
	ValidAttachments []types.GCAttachment `json:"cni.dev/valid-attachments,omitempty"`
}

// IPAM is the ipam section. Only the fields ovsmesh writes (host-local's) are modelled; the
// plugin hands the IPAM plugin the original bytes, so other IPAM plugins keep their fields.
type IPAM struct {
	Type    string    `json:"type"`
	Ranges  [][]Range `json:"ranges,omitempty"`
	Routes  []Route   `json:"routes,omitempty"`
	DataDir string    `json:"dataDir,omitempty"`
}

// Range is one host-local range.
type Range struct {
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway,omitempty"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
}

// Route is one route host-local returns to the plugin; an empty GW means "via the gateway
// of the address family", which the plugin fills in.
type Route struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// ErrPluginNotAvailable is the spec's STATUS code 50: the plugin cannot service ADD.
const ErrPluginNotAvailable uint = 50

// Parse decodes and validates the plugin's stdin. Errors are *types.Error with the spec's
// codes: 6 for JSON that does not decode, 7 for a configuration that fails validation.
// It checks only what needs no host state (the bridge's existence is the plugin's job).
func Parse(stdin []byte) (*NetConf, error) {
	var c NetConf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "malformed ovsmesh network config", err.Error())
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the fields the plugin relies on. It returns a *types.Error (code 7) so
// the runtime sees a message naming the bad key.
func (c *NetConf) Validate() error {
	invalid := func(format string, a ...any) error {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(format, a...), "")
	}
	switch {
	case c.Bridge == "":
		return invalid(`"bridge" is required: the name of the node's pod bridge (kbr0)`)
	case !validIfName(c.Bridge):
		return invalid(`"bridge" %q is not a valid interface name (1-15 characters, no '/', ':' or whitespace)`, c.Bridge)
	case c.IPAM.Type == "":
		return invalid(`"ipam" section with a "type" is required (ovsmesh delegates addresses to an IPAM plugin such as host-local)`)
	case c.MTU != 0 && (c.MTU < MinMTU || c.MTU > MaxMTU):
		return invalid(`"mtu" %d out of range: 0 (use the bridge's MTU) or %d-%d`, c.MTU, MinMTU, MaxMTU)
	}
	return nil
}

// validIfName mirrors the kernel's dev_valid_name: at most IFNAMSIZ-1 bytes, not "." or
// "..", no '/', ':' or whitespace.
func validIfName(name string) bool {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if r == '/' || r == ':' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' {
			return false
		}
	}
	return true
}
