package ipmac

import (
	"net/netip"
	"testing"
)

func TestFromIPv4(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"10.244.1.1", "0a:58:0a:f4:01:01"},
		{"10.244.255.254", "0a:58:0a:f4:ff:fe"},
		{"::ffff:10.244.3.2", "0a:58:0a:f4:03:02"},
	} {
		got := FromIPv4(netip.MustParseAddr(tc.ip))
		if got.String() != tc.want {
			t.Errorf("FromIPv4(%s) = %s, want %s", tc.ip, got, tc.want)
		}
		if got[0]&0x01 != 0 || got[0]&0x02 == 0 {
			t.Errorf("FromIPv4(%s) = %s is not a locally administered unicast MAC", tc.ip, got)
		}
	}
	if got := FromIPv4(netip.MustParseAddr("fd00::1")); got != nil {
		t.Errorf("FromIPv4(IPv6) = %s, want nil", got)
	}
}
