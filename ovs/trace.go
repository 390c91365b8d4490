package ovs

import (
	"context"
	"regexp"
	"strconv"
	"strings"
)

// Trace asks ovs-vswitchd (unixctl socket ctl) what bridge does with a packet matching flow
// (ovs-appctl ofproto/trace syntax, e.g. "in_port=vobr0,dl_dst=…,ip,nw_dst=10.244.2.5"):
// the rules it hits, the MAC learning decision and the datapath actions, as text. Nothing
// is sent; ovs-vswitchd only simulates.
func Trace(ctx context.Context, ctl, bridge, flow string) (string, error) {
	return unixctl(ctx, ctl, "ofproto/trace", bridge, flow)
}

// DatapathPorts returns bridge's non-tunnel ports by datapath port number (ovs-appctl
// dpif/show): the numbers ofproto/trace's "Datapath actions" output to.
func DatapathPorts(ctx context.Context, ctl, bridge string) (map[int]string, error) {
	out, err := unixctl(ctx, ctl, "dpif/show")
	if err != nil {
		return nil, err
	}
	return parseDpifShow(out, bridge), nil
}

// "    vobr0 2/3: (system)": name, OpenFlow port / datapath port.
var dpifPort = regexp.MustCompile(`^\s+(\S+) \d+/(\d+):`)

func parseDpifShow(out, bridge string) map[int]string {
	ports := map[int]string{}
	in := false
	for _, l := range strings.Split(out, "\n") {
		if t := strings.TrimSpace(l); strings.HasSuffix(t, ":") && !strings.Contains(t, " ") {
			in = strings.TrimSuffix(t, ":") == bridge // "  obr0:" opens a bridge's list
			continue
		}
		// Tunnel ports share one datapath port (gre_sys, vxlan_sys_4789): ofproto/trace
		// names their peer in the tnl_push header instead, so they are left out here.
		if m := dpifPort.FindStringSubmatch(l); in && m != nil && !strings.Contains(l, "remote_ip=") {
			if n, err := strconv.Atoi(m[2]); err == nil {
				ports[n] = m[1]
			}
		}
	}
	return ports
}
