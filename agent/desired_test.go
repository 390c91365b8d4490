package agent

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	cniconfig "github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/ovs"
)

func subnet(name, cidr, gw, ip string) v1alpha1.NodeSubnet {
	return v1alpha1.NodeSubnet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.NodeSubnetSpec{NodeName: name, CIDR: cidr, Gateway: gw, NodeIP: ip},
	}
}

func ptr[T any](v T) *T { return &v }

func defaultSpec() v1alpha1.NetworkClusterSpec {
	return v1alpha1.NetworkClusterSpec{
		ClusterCIDR:            "10.244.0.0/16",
		NodeSubnetPrefixLength: 24,
		Tunnel:                 v1alpha1.TunnelSpec{Type: v1alpha1.TunnelGRE, VXLANPort: 4789},
		LoopPrevention: v1alpha1.LoopPreventionSpec{Protocol: v1alpha1.ProtocolSTP, Priority: 32768,
			HelloTime: 2, MaxAge: 20, ForwardDelay: 15},
		Bridges:      v1alpha1.BridgeNames{OVS: "obr0", Linux: "kbr0"},
		DatapathType: v1alpha1.DatapathSystem,
	}
}

func threeNodes() []v1alpha1.NodeSubnet {
	return []v1alpha1.NodeSubnet{
		subnet("n3", "10.244.3.0/24", "10.244.3.1", "172.30.0.3"),
		subnet("n1", "10.244.1.0/24", "10.244.1.1", "172.30.0.1"),
		subnet("n2", "10.244.2.0/24", "10.244.2.1", "172.30.0.2"),
	}
}

func peerNames(ts []ovs.TunnelSpec) string {
	var s []string
	for _, p := range ts {
		s = append(s, p.PeerName+"="+p.RemoteIP)
	}
	return strings.Join(s, ",")
}

// tunnelsAgree returns the value f reads from every tunnel, failing when they differ.
func tunnelsAgree[T comparable](t *testing.T, s NodeState, f func(ovs.TunnelSpec) T) T {
	t.Helper()
	if len(s.OVS.Tunnels) == 0 {
		t.Fatal("no tunnels")
	}
	v := f(s.OVS.Tunnels[0])
	for _, tu := range s.OVS.Tunnels[1:] {
		if f(tu) != v {
			t.Fatalf("tunnels differ: %+v vs %+v", s.OVS.Tunnels[0], tu)
		}
	}
	return v
}

func timers(b ovs.BridgeSpec) [4]int {
	return [4]int{*b.Priority, b.HelloTime, b.MaxAge, b.ForwardDelay}
}

func TestDesired(t *testing.T) {
	tests := []struct {
		name     string
		spec     func(*v1alpha1.NetworkClusterSpec)
		subnets  func([]v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet
		node     string
		underlay int
		check    func(t *testing.T, s NodeState)
		wantErr  string
	}{
		{
			name: "GRE defaults", node: "n1", underlay: 1500,
			check: func(t *testing.T, s NodeState) {
				eq(t, "address", s.Host.Bridge.Address, netip.MustParsePrefix("10.244.1.1/24"))
				eq(t, "mtu", s.MTU, 1458)
				eq(t, "bridge mtu", s.Host.Bridge.MTU, 1458)
				eq(t, "veth mtu", s.Host.Veth.MTU, 1458)
				eq(t, "peers", peerNames(s.OVS.Tunnels), "n2=172.30.0.2,n3=172.30.0.3")
				eq(t, "tunnel", s.OVS.TunnelType, "gre")
				eq(t, "dst port", tunnelsAgree(t, s, func(tu ovs.TunnelSpec) int { return tu.DstPort }), 0)
				eq(t, "route", s.Host.Route.Dst, netip.MustParsePrefix("10.244.0.0/16"))
				eq(t, "route dev", s.Host.Route.Dev, "kbr0")
				eq(t, "masq", s.Host.Masquerade.Enabled, true)
				eq(t, "masq cidr", s.Host.Masquerade.ClusterCIDR, netip.MustParsePrefix("10.244.0.0/16"))
				eq(t, "veth", s.Host.Veth.Name+"/"+s.Host.Veth.PeerName+"/"+s.Host.Veth.Master, "vobr0/vkbr0/kbr0")
				eq(t, "ovs port", s.OVS.VethPort, "vobr0")
				eq(t, "offloads", s.Host.Veth.DisableOffloads, false)
				eq(t, "stp", string(s.OVS.Protocol)+"/"+s.OVS.Bridge.Protocol+"/"+s.OVS.Bridge.DatapathType+"/"+s.OVS.Bridge.FailMode, "STP/STP/system/standalone")
				eq(t, "timers", timers(s.OVS.Bridge), [4]int{32768, 2, 20, 15})
				eq(t, "cni", s.CNI, cniconfig.Input{CNIVersion: "1.1.0", IPAMType: "ovsmesh-host-local", PortmapPlugin: "ovsmesh-portmap", Portmap: true,
					Bridge: "kbr0", Subnet: netip.MustParsePrefix("10.244.1.0/24"),
					Gateway: netip.MustParseAddr("10.244.1.1"), ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), MTU: 1458})
			},
		},
		{
			name: "VXLAN overhead and port", node: "n2", underlay: 1500,
			spec: func(s *v1alpha1.NetworkClusterSpec) {
				s.Tunnel.Type = v1alpha1.TunnelVXLAN
				s.Tunnel.Key = ptr(int64(42))
			},
			check: func(t *testing.T, s NodeState) {
				eq(t, "mtu", s.MTU, 1450)
				eq(t, "tunnel", s.OVS.TunnelType, "vxlan")
				eq(t, "dst port", tunnelsAgree(t, s, func(tu ovs.TunnelSpec) int { return tu.DstPort }), 4789)
				eq(t, "key", tunnelsAgree(t, s, func(tu ovs.TunnelSpec) int64 { return *tu.Key }), int64(42))
				eq(t, "peers", peerNames(s.OVS.Tunnels), "n1=172.30.0.1,n3=172.30.0.3")
			},
		},
		{
			name: "jumbo underlay", node: "n1", underlay: 9000,
			spec:  func(s *v1alpha1.NetworkClusterSpec) { s.Tunnel.Type = v1alpha1.TunnelVXLAN },
			check: func(t *testing.T, s NodeState) { eq(t, "mtu", s.MTU, 8950) },
		},
		{
			name: "explicit MTU wins over underlay", node: "n1", underlay: 1500,
			spec:  func(s *v1alpha1.NetworkClusterSpec) { s.MTU = 1400 },
			check: func(t *testing.T, s NodeState) { eq(t, "mtu", s.MTU, 1400) },
		},
		{
			name: "explicit MTU larger than the underlay allows", node: "n1", underlay: 1500,
			spec:    func(s *v1alpha1.NetworkClusterSpec) { s.MTU = 1480 },
			wantErr: "spec.mtu 1480 is larger than this node's underlay allows: 1500 (underlay) − 42 (GRE overhead) = 1458",
		},
		{
			name: "explicit MTU needs no underlay MTU", node: "n1", underlay: 0,
			spec:  func(s *v1alpha1.NetworkClusterSpec) { s.MTU = 1400 },
			check: func(t *testing.T, s NodeState) { eq(t, "mtu", s.MTU, 1400) },
		},
		{
			name: "underlay too small", node: "n1", underlay: 40, wantErr: "too small",
		},
		{
			name: "masquerade off, RSTP, netdev, custom names", node: "n1", underlay: 1500,
			spec: func(s *v1alpha1.NetworkClusterSpec) {
				s.Masquerade = ptr(false)
				s.LoopPrevention = v1alpha1.LoopPreventionSpec{Protocol: v1alpha1.ProtocolRSTP, Priority: 4096,
					HelloTime: 1, MaxAge: 6, ForwardDelay: 4}
				s.DatapathType = v1alpha1.DatapathNetdev
				s.Bridges = v1alpha1.BridgeNames{OVS: "ovs-mesh-bridge", Linux: "pods"}
			},
			check: func(t *testing.T, s NodeState) {
				eq(t, "masq", s.Host.Masquerade.Enabled, false)
				eq(t, "proto", s.OVS.Protocol, "RSTP")
				eq(t, "timers", timers(s.OVS.Bridge), [4]int{4096, 1, 6, 4})
				eq(t, "datapath", s.OVS.Bridge.DatapathType, "netdev")
				eq(t, "offloads", s.Host.Veth.DisableOffloads, true)
				eq(t, "bridges", s.OVS.Bridge.Name+"/"+s.Host.Bridge.Name, "ovs-mesh-bridge/pods")
				eq(t, "veth", s.Host.Veth.Name+"/"+s.Host.Veth.PeerName, "vovs-mesh-bridg/vpods")
				eq(t, "route dev", s.Host.Route.Dev, "pods")
			},
		},
		{
			name: "empty spec takes the API defaults", node: "n1", underlay: 1500,
			spec: func(s *v1alpha1.NetworkClusterSpec) { *s = v1alpha1.NetworkClusterSpec{} },
			check: func(t *testing.T, s NodeState) {
				eq(t, "cidr", s.ClusterCIDR, netip.MustParsePrefix("10.244.0.0/16"))
				eq(t, "names", s.OVS.Bridge.Name+"/"+s.Host.Bridge.Name, "obr0/kbr0")
				eq(t, "tunnel", s.OVS.TunnelType, "gre")
				eq(t, "timers", [3]int{s.OVS.Bridge.HelloTime, s.OVS.Bridge.MaxAge, s.OVS.Bridge.ForwardDelay}, [3]int{2, 20, 15})
				eq(t, "masq", s.Host.Masquerade.Enabled, true)
			},
		},
		{
			name: "peers being torn down, deleted, without IP or duplicated are skipped", node: "n1", underlay: 1500,
			subnets: func(in []v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet {
				in[0].Spec.Teardown = true // n3
				noIP := subnet("n4", "10.244.4.0/24", "10.244.4.1", "")
				dup := subnet("n5", "10.244.5.0/24", "10.244.5.1", "172.30.0.2")
				self := subnet("n6", "10.244.6.0/24", "10.244.6.1", "172.30.0.1")
				gone := subnet("n7", "10.244.7.0/24", "10.244.7.1", "172.30.0.7")
				gone.DeletionTimestamp = &metav1.Time{}
				v6 := subnet("n8", "10.244.8.0/24", "10.244.8.1", "fd00::8")
				zero := subnet("n9", "10.244.9.0/24", "10.244.9.1", "0.0.0.0")
				bcast := subnet("na", "10.244.10.0/24", "10.244.10.1", "255.255.255.255")
				return append(in, noIP, dup, self, gone, v6, zero, bcast)
			},
			check: func(t *testing.T, s NodeState) {
				eq(t, "peers", peerNames(s.OVS.Tunnels), "n2=172.30.0.2")
				// Left out and reported, each with its reason; the torn-down and deleted ones
				// are not peers at all.
				var got []string
				for _, k := range s.OVS.Skipped {
					got = append(got, k.NodeName+":"+k.Reason)
				}
				eq(t, "skipped", strings.Join(got, ","), "n4:UnusableAddress,n5:DuplicateAddress,n6:DuplicateAddress,n8:UnusableAddress,n9:UnusableAddress,na:UnusableAddress")
				if m := s.OVS.Skipped[1].Message; !strings.Contains(m, "172.30.0.2 is also n2's") {
					t.Errorf("duplicate message %q", m)
				}
				if m := s.OVS.Skipped[2].Message; !strings.Contains(m, "this node's") {
					t.Errorf("own-address duplicate message %q", m)
				}
			},
		},
		{
			name: "single node has no peers", node: "n1", underlay: 1500,
			subnets: func(in []v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet { return in[1:2] },
			check: func(t *testing.T, s NodeState) {
				if s.OVS.Tunnels == nil || len(s.OVS.Tunnels) != 0 {
					t.Fatalf("tunnels = %#v, want empty non-nil", s.OVS.Tunnels)
				}
			},
		},
		{
			name: "no subnet for this node", node: "n9", underlay: 1500, wantErr: ErrNoSubnet.Error(),
		},
		{
			name: "a peer's node IP inside the cluster CIDR", node: "n1", underlay: 1500,
			wantErr: "the cluster CIDR 10.244.0.0/16 contains the node address of n9 (10.244.200.9)",
			subnets: func(in []v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet {
				return append(in, subnet("n9", "10.244.9.0/24", "10.244.9.1", "10.244.200.9"))
			},
		},
		{
			name: "gateway is the broadcast address", node: "n1", underlay: 1500, wantErr: "network or broadcast address of 10.244.1.0/24",
			subnets: func(in []v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet {
				in[1].Spec.Gateway = "10.244.1.255"
				return in
			},
		},
		{
			name: "gateway outside cidr", node: "n1", underlay: 1500, wantErr: "outside 10.244.1.0/24",
			subnets: func(in []v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet {
				in[1].Spec.Gateway = "10.244.9.1"
				return in
			},
		},
		{
			name: "subnet outside the cluster CIDR", node: "n1", underlay: 1500, wantErr: "outside the cluster CIDR",
			subnets: func(in []v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet {
				in[1].Spec.CIDR, in[1].Spec.Gateway = "10.9.1.0/24", "10.9.1.1"
				return in
			},
		},
		{
			name: "own node IP invalid", node: "n1", underlay: 1500, wantErr: "nodeIP",
			subnets: func(in []v1alpha1.NodeSubnet) []v1alpha1.NodeSubnet {
				in[1].Spec.NodeIP = "nope"
				return in
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := defaultSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			subnets := threeNodes()
			if tc.subnets != nil {
				subnets = tc.subnets(subnets)
			}
			got, err := Desired(spec, subnets, tc.node, tc.underlay)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Desired: %v", err)
			}
			tc.check(t, got)
			// Pure: the same inputs give the same output, and the input order of the
			// NodeSubnets does not matter.
			rev := make([]v1alpha1.NodeSubnet, len(subnets))
			for i := range subnets {
				rev[len(subnets)-1-i] = subnets[i]
			}
			again, err := Desired(spec, rev, tc.node, tc.underlay)
			if err != nil || !reflect.DeepEqual(got, again) {
				t.Fatalf("not deterministic: %v\n%#v\n%#v", err, got, again)
			}
		})
	}
}

func TestDesiredNoSubnetIsSentinel(t *testing.T) {
	_, err := Desired(defaultSpec(), nil, "n1", 1500)
	if !errors.Is(err, ErrNoSubnet) {
		t.Fatalf("err = %v, want ErrNoSubnet", err)
	}
}

func TestVethNames(t *testing.T) {
	for _, tc := range []struct{ ovs, linux, wantO, wantL string }{
		{"obr0", "kbr0", "vobr0", "vkbr0"},
		{"aaaaaaaaaaaaaaX", "aaaaaaaaaaaaaaY", "vaaaaaaaaaaaaaa", "vaaaaaaaaaaaaak"},
		{"aaaaaaaaaaaaakX", "aaaaaaaaaaaaakY", "vaaaaaaaaaaaaak", "vaaaaaaaaaaaaal"},
	} {
		o, l := VethNames(tc.ovs, tc.linux)
		if o != tc.wantO || l != tc.wantL || len(o) > 15 || len(l) > 15 {
			t.Errorf("VethNames(%q,%q) = %q,%q want %q,%q", tc.ovs, tc.linux, o, l, tc.wantO, tc.wantL)
		}
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
