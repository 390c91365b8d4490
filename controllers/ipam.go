package controllers

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrExhausted is returned by the picker when every node subnet of the cluster CIDR is taken.
var ErrExhausted = errors.New("no free node subnet left in the cluster CIDR")

// maxPoolBits caps the number of subnets a Pool indexes (2^24): the allocator keeps an
// in-memory used set, so a cluster CIDR of /8 split into /30s must not be turned into
// hundreds of millions of entries. The API already limits both prefixes to IPv4.
const maxPoolBits = 24

// Pool is the set of node subnets carved out of the cluster CIDR: subnet i is the i-th block
// of length prefixLen inside the cluster CIDR. It is a pure value: which subnets are taken is
// never stored in it, the caller passes the used set (derived from the API server) every time,
// so the allocator itself has no state to lose or to get out of sync.
type Pool struct {
	cluster   netip.Prefix
	prefixLen int
}

// NewPool checks the cluster CIDR and the node prefix length and returns their pool.
func NewPool(clusterCIDR string, prefixLen int) (Pool, error) {
	p, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return Pool{}, fmt.Errorf("cluster CIDR %q: %w", clusterCIDR, err)
	}
	if !p.Addr().Is4() {
		return Pool{}, fmt.Errorf("cluster CIDR %q: only IPv4 is supported", clusterCIDR)
	}
	if p.Masked() != p {
		return Pool{}, fmt.Errorf("cluster CIDR %q has host bits set", clusterCIDR)
	}
	if prefixLen <= p.Bits() || prefixLen > 30 {
		return Pool{}, fmt.Errorf("node subnet prefix length /%d must be longer than the cluster CIDR's /%d and at most /30", prefixLen, p.Bits())
	}
	if prefixLen-p.Bits() > maxPoolBits {
		return Pool{}, fmt.Errorf("cluster CIDR %s split into /%d gives more than 2^%d node subnets", p, prefixLen, maxPoolBits)
	}
	return Pool{cluster: p, prefixLen: prefixLen}, nil
}

// Size is the number of node subnets in the pool.
func (p Pool) Size() int { return 1 << (p.prefixLen - p.cluster.Bits()) }

// Subnet returns subnet i (0 <= i < Size()).
func (p Pool) Subnet(i int) netip.Prefix {
	v := u32(p.cluster.Addr()) + uint32(i)<<(32-p.prefixLen)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.prefixLen)
}

// Index returns the position of subnet s in the pool, or false when s is not exactly one of
// the pool's subnets (wrong length, host bits set, or outside the cluster CIDR).
func (p Pool) Index(s netip.Prefix) (int, bool) {
	if !s.Addr().Is4() || s.Bits() != p.prefixLen || s.Masked() != s || !p.cluster.Contains(s.Addr()) {
		return 0, false
	}
	off := u32(s.Addr()) - u32(p.cluster.Addr())
	return int(off >> (32 - p.prefixLen)), true
}

// ParseIndex is Index for a CIDR string such as a NodeSubnet's spec.cidr.
func (p Pool) ParseIndex(cidr string) (int, bool) {
	s, err := netip.ParsePrefix(cidr)
	if err != nil {
		return 0, false
	}
	return p.Index(s)
}

// Free is the number of subnets of the pool not in used (indexes outside the pool are ignored).
func (p Pool) Free(used map[int]bool) int {
	n := p.Size()
	for i, u := range used {
		if u && i >= 0 && i < p.Size() {
			n--
		}
	}
	return n
}

// Gateway is the first address of a subnet: the node's kbr0 address (10.244.3.0/24 → 10.244.3.1).
func Gateway(s netip.Prefix) netip.Addr { return s.Masked().Addr().Next() }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
