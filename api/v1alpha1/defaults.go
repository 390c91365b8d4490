package v1alpha1

// The defaults of the API, each the value of a +kubebuilder:default marker in
// networkcluster_types.go (TestDefaultsMatchTheCRD reads them back from the generated CRD).
// The API server fills them in, so a stored object always has them; the accessors below
// return the effective value anyway, because Go code also meets specs that never went
// through the API server (unit tests, an older API server, a literal in a tool), and the
// agent, the flags and kubectl ovsmesh must not restate them.
const (
	DefaultClusterCIDR            = "10.244.0.0/16"
	DefaultNodeSubnetPrefixLength = 24
	DefaultOVSBridge              = "obr0"
	DefaultLinuxBridge            = "kbr0"
	DefaultTunnelType             = TunnelGRE
	DefaultVXLANPort              = 4789
	DefaultProtocol               = ProtocolSTP
	DefaultPriority               = 32768
	DefaultHelloTime              = 2
	DefaultMaxAge                 = 20
	DefaultForwardDelay           = 15
	DefaultDatapathType           = DatapathSystem
	DefaultAgentImage             = "ghcr.io/ovsmesh/ovsmesh-agent:v0.1.0"
)

// ClusterCIDROf is the effective cluster CIDR.
func (s *NetworkClusterSpec) ClusterCIDROf() string { return or(s.ClusterCIDR, DefaultClusterCIDR) }

// NodeSubnetPrefixLengthOf is the effective node subnet prefix length.
func (s *NetworkClusterSpec) NodeSubnetPrefixLengthOf() int {
	return int(orZero(s.NodeSubnetPrefixLength, DefaultNodeSubnetPrefixLength))
}

// DatapathTypeOf is the effective OVS datapath type.
func (s *NetworkClusterSpec) DatapathTypeOf() DatapathType {
	return or(s.DatapathType, DefaultDatapathType)
}

// AgentImageOf is the effective agent image.
func (s *NetworkClusterSpec) AgentImageOf() string { return or(s.AgentImage, DefaultAgentImage) }

// OVSOf is the effective OVS bridge name.
func (b *BridgeNames) OVSOf() string { return or(b.OVS, DefaultOVSBridge) }

// LinuxOf is the effective Linux bridge name.
func (b *BridgeNames) LinuxOf() string { return or(b.Linux, DefaultLinuxBridge) }

// TypeOf is the effective tunnel type.
func (t *TunnelSpec) TypeOf() TunnelType { return or(t.Type, DefaultTunnelType) }

// VXLANPortOf is the effective VXLAN UDP port.
func (t *TunnelSpec) VXLANPortOf() int { return int(orZero(t.VXLANPort, DefaultVXLANPort)) }

// ProtocolOf is the effective loop-prevention protocol.
func (l *LoopPreventionSpec) ProtocolOf() LoopPreventionProtocol {
	return or(l.Protocol, DefaultProtocol)
}

// PriorityOf is the bridge priority as written: 0 is a valid priority (the most preferred
// root), so no default can be told from it; the API server's default is DefaultPriority.
func (l *LoopPreventionSpec) PriorityOf() int { return int(l.Priority) }

// HelloTimeOf is the effective hello time in seconds.
func (l *LoopPreventionSpec) HelloTimeOf() int { return int(orZero(l.HelloTime, DefaultHelloTime)) }

// MaxAgeOf is the effective max age in seconds.
func (l *LoopPreventionSpec) MaxAgeOf() int { return int(orZero(l.MaxAge, DefaultMaxAge)) }

// ForwardDelayOf is the effective forward delay in seconds.
func (l *LoopPreventionSpec) ForwardDelayOf() int {
	return int(orZero(l.ForwardDelay, DefaultForwardDelay))
}

func or[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}

func orZero(v, def int32) int32 {
	if v == 0 {
		return def
	}
	return v
}
