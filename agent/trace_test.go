package agent

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestTraceFlow(t *testing.T) {
	a := netip.MustParseAddr
	in, flow, err := TraceFlow(TraceRequest{OVSBridge: "obr0", LinuxBridge: "kbr0", Tunnel: "gre",
		SrcIP: a("10.244.1.5"), DstIP: a("10.244.2.7"), SrcGateway: a("10.244.1.1")})
	if err != nil || in != "vobr0" || flow != "in_port=vobr0,dl_src=0a:58:0a:f4:01:01,dl_dst=0a:58:0a:f4:02:07,ip,nw_src=10.244.1.5,nw_dst=10.244.2.7,nw_ttl=63" {
		t.Errorf("from a pod: %q %q %v", in, flow, err)
	}
	in, flow, err = TraceFlow(TraceRequest{OVSBridge: "obr0", LinuxBridge: "kbr0", Tunnel: "gre",
		SrcIP: a("10.244.1.5"), DstIP: a("10.244.2.7"), SrcGateway: a("10.244.1.1"), FromNodeIP: a("172.30.0.1"), NodeIP: a("172.30.0.2")})
	if err != nil || in != "gre-ac1e0001" || flow != "in_port=gre-ac1e0001,tun_src=172.30.0.1,tun_dst=172.30.0.2,dl_src=0a:58:0a:f4:01:01,dl_dst=0a:58:0a:f4:02:07,ip,nw_src=10.244.1.5,nw_dst=10.244.2.7,nw_ttl=63" {
		t.Errorf("from a tunnel: %q %q %v", in, flow, err)
	}
	if _, _, err := TraceFlow(TraceRequest{}); err == nil {
		t.Error("an empty request was accepted")
	}
}

func TestParseTrace(t *testing.T) {
	dp := map[int]string{1: "obr0", 3: "vobr0"}
	tests := []struct {
		name string
		out  string
		want TraceResult
	}{
		{"learned, to a tunnel", `bridge("obr0")
 0. priority 0
    NORMAL
     -> forwarding to learned port
Datapath actions: tnl_push(tnl_port(2),header(size=38,type=3,eth(dst=02:00:00:00:00:02,src=02:00:00:00:00:01,dl_type=0x0800),ipv4(src=172.30.0.1,dst=172.30.0.2,proto=47,tos=0,ttl=64,frag=0x4000),gre((flags=0x0,proto=0x6558))),out_port(4))`,
			TraceResult{Learned: true, Tunnels: []string{"172.30.0.2"}, Local: []string{}, Notes: []string{}}},
		{"flooded to two tunnels", `     -> no learned MAC for destination, flooding
Datapath actions: clone(tnl_push(tnl_port(2),header(ipv4(src=172.30.0.1,dst=172.30.0.2,proto=47)),out_port(4))),tnl_push(tnl_port(2),header(ipv4(src=172.30.0.1,dst=172.30.0.3,proto=47)),out_port(4))`,
			TraceResult{Flooded: true, Tunnels: []string{"172.30.0.2", "172.30.0.3"}, Local: []string{}, Notes: []string{}}},
		{"delivered to the veth", `     -> forwarding to learned port
Datapath actions: 3`, TraceResult{Learned: true, Tunnels: []string{}, Local: []string{"vobr0"}, Notes: []string{}}},
		{"dropped", `     -> no learned MAC for destination, flooding
     -> output to native tunnel
     >> native tunnel routing failed
Datapath actions: drop`, TraceResult{Flooded: true, Dropped: true, Tunnels: []string{}, Local: []string{}, Notes: []string{"native tunnel routing failed"}}},
	}
	for _, tc := range tests {
		got := ParseTrace(tc.out, dp)
		got.Raw = ""
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
