package v1alpha1

import (
	"net/netip"
	"testing"
)

func TestUsableNodeIP(t *testing.T) {
	for s, ok := range map[string]bool{
		"172.30.0.2": true, "10.0.0.1": true, "198.18.0.1": true, "169.254.10.1": true,
		"0.0.0.0": false, "127.0.0.1": false, "224.0.0.5": false, "239.255.255.250": false,
		"255.255.255.255": false, "fd00::1": false,
	} {
		if err := UsableNodeIP(netip.MustParseAddr(s)); (err == nil) != ok {
			t.Errorf("UsableNodeIP(%s) = %v, want usable=%v", s, err, ok)
		}
	}
	if UsableNodeIP(netip.Addr{}) == nil {
		t.Error("the zero Addr is usable")
	}
}
