package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/ovsmesh/ovsmesh/agent"
	"github.com/ovsmesh/ovsmesh/ovs"
)

// traceFlags are the trace subcommand's own flags (kubectl ovsmesh trace passes them).
type traceFlags struct {
	tunnel, srcIP, dstIP, srcGateway, fromNodeIP, nodeIP string
}

func (t *traceFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&t.tunnel, "tunnel", "gre", "trace: tunnel type of the mesh (gre or vxlan)")
	fs.StringVar(&t.srcIP, "src-ip", "", "trace: the source pod's address")
	fs.StringVar(&t.dstIP, "dst-ip", "", "trace: the destination pod's address")
	fs.StringVar(&t.srcGateway, "src-gateway", "", "trace: the pod gateway of the source pod's node")
	fs.StringVar(&t.fromNodeIP, "from-node-ip", "", "trace: the node the packet arrives from through its tunnel (empty: from a pod on this node)")
	fs.StringVar(&t.nodeIP, "node-ip", "", "trace: this node's underlay address (with --from-node-ip)")
}

// trace asks this node's ovs-vswitchd what obr0 does with the packet the flags describe,
// and prints agent.TraceResult as JSON. It reads nothing from the API server: the caller
// (kubectl ovsmesh trace) knows the pods and the nodes.
func trace(w io.Writer, o options, t traceFlags) error {
	parse := func(s string) netip.Addr {
		a, _ := netip.ParseAddr(s)
		return a
	}
	req := agent.TraceRequest{OVSBridge: o.ovsBridge, LinuxBridge: o.linuxBridge, Tunnel: t.tunnel,
		SrcIP: parse(t.srcIP), DstIP: parse(t.dstIP), SrcGateway: parse(t.srcGateway),
		FromNodeIP: parse(t.fromNodeIP), NodeIP: parse(t.nodeIP)}
	inPort, flow, err := agent.TraceFlow(req)
	if err != nil {
		return err
	}
	ctl := o.vswitchdCtl
	if ctl == "" {
		if ctl, err = ovs.VswitchdCtlPath(filepath.Dir(o.ovsdbSocket)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ovs.Trace(ctx, ctl, o.ovsBridge, flow)
	if err != nil {
		return err
	}
	dp, err := ovs.DatapathPorts(ctx, ctl, o.ovsBridge)
	if err != nil {
		return err
	}
	r := agent.ParseTrace(out, dp)
	r.InPort, r.Flow = inPort, flow
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
