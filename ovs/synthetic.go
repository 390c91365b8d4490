package ovs

import (
	"fmt"
	"net/netip"
)

// SyntheticPeers returns n tunnel specs of the given type to made-up peers in
// 198.18.0.0/15 (RFC 2544's benchmarking range, so never a real node), named
// "peer-1"... with key 1 and, for VXLAN, dst_port 4789. Benchmarks and scale tests
// use it to sync large meshes (n up to 131,070).
func SyntheticPeers(n int, tunnelType string) []TunnelSpec {
	out := make([]TunnelSpec, 0, n)
	base := netip.MustParseAddr("198.18.0.0").As4()
	for i := 1; i <= n && i < 1<<17-1; i++ {
		a := base
		a[1] += byte(i >> 16)
		a[2] = byte(i >> 8)
		a[3] = byte(i)
		out = append(out, TunnelSpec{PeerName: fmt.Sprintf("peer-%d", i), RemoteIP: netip.AddrFrom4(a).String(),
			Type: tunnelType, Key: new(int64(1)), DstPort: 4789})
	}
	return out
}
