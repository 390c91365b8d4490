package v1alpha1

import (
	"fmt"
	"net/netip"
)

// UsableNodeIP reports why a node address cannot be the far end of a tunnel, or nil when it
// can: an IPv4 unicast address, not 0.0.0.0, loopback, multicast or the broadcast address.
// The NodeSubnet CRD's nodeIP rule says the same at admission; the operator uses this to
// skip such an InternalIP (the node waits for a usable one) and the agent to leave such a
// peer out of its mesh instead of failing the whole tunnel sync.
func UsableNodeIP(a netip.Addr) error {
	switch {
	case !a.IsValid() || !a.Is4():
		return fmt.Errorf("%v is not an IPv4 address", a)
	case a.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address", a)
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address", a)
	case a.IsMulticast():
		return fmt.Errorf("%s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s is the broadcast address", a)
	}
	return nil
}
