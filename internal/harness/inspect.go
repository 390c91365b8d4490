package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// TunnelPorts returns the node's GRE/VXLAN interfaces: name → type, read with ovs-vsctl.
func (n *Node) TunnelPorts(ctx context.Context) (map[string]string, error) {
	out, err := n.Vsctl(ctx, "--format=csv", "--data=bare", "--no-headings", "--columns=name,type", "list", "Interface")
	if err != nil {
		return nil, err
	}
	ports := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, ",")
		if len(f) == 2 && (f[1] == "gre" || f[1] == "vxlan") {
			ports[f[0]] = f[1]
		}
	}
	return ports, nil
}

// BridgeUUID returns the OVSDB row UUID of a bridge ("" if it does not exist).
func (n *Node) BridgeUUID(ctx context.Context, br string) string {
	out, err := n.Vsctl(ctx, "--if-exists", "get", "Bridge", br, "_uuid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// SpanningTree returns port → "role/state" from `ovs-appctl stp/show` (or rstp/show), e.g.
// "designated/forwarding", "alternate/blocking", "alternate/discarding". The show commands cut
// interface names to 10 characters (so "gre-ac1e0002" and "gre-ac1e0003" read alike); the
// key is therefore "<shown name>@<port number>", unique per port.
func (n *Node) SpanningTree(ctx context.Context, protocol, br string) (map[string]string, error) {
	cmd := "stp/show"
	if protocol == "RSTP" {
		cmd = "rstp/show"
	}
	out, err := n.Appctl(ctx, cmd, br)
	if err != nil {
		return nil, err
	}
	return parseSTPShow(out), nil
}

// parseSTPShow reads the port table of stp/show and rstp/show: a header line starting with
// "Interface", a dashed line, then "name role state cost pri.nbr" rows.
func parseSTPShow(out string) map[string]string {
	ports := map[string]string{}
	inTable := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "Interface":
			inTable = true
		case !inTable || len(f) < 3 || strings.HasPrefix(f[0], "---"):
		default:
			ports[f[0]+"@"+f[len(f)-1]] = strings.ToLower(f[1] + "/" + f[2])
		}
		if len(f) == 0 {
			inTable = false
		}
	}
	return ports
}

// UnderlayPackets is the number of packets the underlay bridge has sent to all nodes so far:
// the measure of a broadcast storm.
func (c *Cluster) UnderlayPackets(ctx context.Context) (uint64, error) {
	return c.underlayTx(ctx, func(port string) bool { return strings.HasPrefix(port, c.Prefix+"-u") })
}

// UnderlayPacketsTo is the number of packets the underlay bridge has sent to node n so far:
// everything n's OVS received, so traffic crossing n in transit shows in it.
func (c *Cluster) UnderlayPacketsTo(ctx context.Context, n *Node) (uint64, error) {
	return c.underlayTx(ctx, func(port string) bool { return port == n.ulPort })
}

func (c *Cluster) underlayTx(ctx context.Context, match func(port string) bool) (uint64, error) {
	out, err := run(ctx, "ip", "-n", c.underlayNS, "-s", "-j", "link", "show")
	if err != nil {
		return 0, err
	}
	var links []struct {
		Name  string `json:"ifname"`
		Stats struct {
			TX struct {
				Packets uint64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return 0, err
	}
	var sum uint64
	for _, l := range links {
		if match(l.Name) {
			sum += l.Stats.TX.Packets
		}
	}
	return sum, nil
}

// Outside is a host beyond the cluster: behind a router on the underlay, on a network that is
// neither the underlay nor the cluster CIDR, for egress tests. The router knows no route to
// the cluster CIDR, so only masqueraded pod traffic can get an answer.
type Outside struct {
	NS, IP string
}

// AddOutsideHost creates a router namespace on the underlay (172.30.0.254) with an "outside"
// host behind it (198.51.100.10, TEST-NET-2), and gives every current node a default route
// through the router, as a node's default gateway would be.
func (c *Cluster) AddOutsideHost(ctx context.Context) (*Outside, error) {
	rt := c.Prefix + "-rt"
	o := &Outside{NS: c.Prefix + "-out", IP: "198.51.100.10"}
	c.mu.Lock()
	c.namespaces = append(c.namespaces, rt, o.NS)
	c.mu.Unlock()
	for _, ns := range []string{rt, o.NS} {
		if err := addNS(ctx, ns); err != nil {
			return nil, err
		}
	}
	steps := [][]string{
		{"ip", "link", "add", c.Prefix + "-ur", "netns", c.underlayNS, "type", "veth", "peer", "name", "eth0", "netns", rt},
		{"ip", "-n", c.underlayNS, "link", "set", c.Prefix + "-ur", "master", "ulbr", "up"},
		{"ip", "-n", rt, "addr", "add", "172.30.0.254/24", "dev", "eth0"},
		{"ip", "-n", rt, "link", "set", "eth0", "up"},
		{"ip", "link", "add", "eth1", "netns", rt, "type", "veth", "peer", "name", "eth0", "netns", o.NS},
		{"ip", "-n", rt, "addr", "add", "198.51.100.1/24", "dev", "eth1"},
		{"ip", "-n", rt, "link", "set", "eth1", "up"},
		{"ip", "netns", "exec", rt, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "-n", o.NS, "addr", "add", o.IP + "/24", "dev", "eth0"},
		{"ip", "-n", o.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", o.NS, "route", "add", "default", "via", "198.51.100.1"},
	}
	for _, n := range c.Nodes {
		steps = append(steps, []string{"ip", "-n", n.NS, "route", "replace", "default", "via", "172.30.0.254", "dev", "br-phy"})
	}
	for _, s := range steps {
		if _, err := run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	offloadsOff(ctx, rt, "eth0")
	return o, nil
}

// SourceSeenFrom connects over TCP from the pod to a listener on the outside host and returns
// the source address the outside host saw.
func (o *Outside) SourceSeenFrom(ctx context.Context, p *Pod) (string, error) {
	var ln net.Listener
	if err := ns.WithNetNSPath(NSPath(o.NS), func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", o.IP+":0")
		return err
	}); err != nil {
		return "", err
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	err := ns.WithNetNSPath(NSPath(p.NS), func(ns.NetNS) error {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return "", fmt.Errorf("connecting from %s to %s: %w", p.Name, ln.Addr(), err)
	}
	select {
	case s := <-seen:
		return s, nil
	case <-time.After(5 * time.Second):
		return "", fmt.Errorf("outside host saw no connection")
	}
}

// Start runs a long-lived command (iperf3 server, continuous ping) inside the pod.
func (p *Pod) Start(name string, argv ...string) (*Process, error) {
	return startProcess(p.Node.Dir, p.Name+"-"+name, p.NS, nil, argv...)
}
