package agent

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

// TestTwoNodesPodsPing builds two nodes on one underlay with the agent's apply step, plugs a
// hand-made pod namespace into each kbr0 and pings across the mesh, first over GRE, then
// (after a live switch) over VXLAN, each time once STP has converged.
//
// Node set-up follows ovs-userspace-sim.sh: the userspace datapath sends tunnel traffic only
// through an OVS bridge holding the underlay address, so each node's IP lives on br-phy with
// eth0 as its port. That is node environment, made here by the test, not by the agent.
func TestTwoNodesPodsPing(t *testing.T) {
	nodetest.RequireBinaries(t, "ping", "ethtool")
	id := nodetest.RunID()
	ul := "ovsmt-ul-" + id
	nodetest.Sh(t, "ip", "netns", "add", ul)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ul).Run() })
	nodetest.Sh(t, "ip", "-n", ul, "link", "add", "ulbr", "type", "bridge")
	nodetest.Sh(t, "ip", "-n", ul, "link", "set", "ulbr", "up")

	spec := testCluster()
	spec.Tunnel.BFD = true
	subnets := threeNodes()[1:] // n1 172.30.0.1, n2 172.30.0.2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	type member struct {
		*nodetest.Node
		name, ip, pod, podIP string
		a                    *Applier
	}
	var ms []*member
	for i, name := range []string{"n1", "n2"} {
		m := &member{Node: nodetest.New(t, fmt.Sprintf("ovsmt-%s-%s", name, id)), name: name, ip: fmt.Sprintf("172.30.0.%d", i+1)}
		nodetest.Sh(t, "ip", "link", "add", "eth0", "netns", m.NS, "type", "veth", "peer", "name", "ul"+name, "netns", ul)
		nodetest.Sh(t, "ip", "-n", ul, "link", "set", "ul"+name, "master", "ulbr", "up")
		offloadsOff(t, ul, "ul"+name)
		offloadsOff(t, m.NS, "eth0")
		nodetest.Sh(t, "ip", "-n", m.NS, "link", "set", "eth0", "up")
		m.Vsctl("add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
			fmt.Sprintf(`other_config:hwaddr="02:00:00:00:00:0%d"`, i+1), "--", "add-port", "br-phy", "eth0")
		nodetest.Sh(t, "ip", "-n", m.NS, "addr", "add", m.ip+"/24", "dev", "br-phy")
		nodetest.Sh(t, "ip", "-n", m.NS, "link", "set", "br-phy", "up")
		m.a = &Applier{Host: m.Host(), OVS: NewOVSSide(m.Dial()), CNIConfDir: m.Dir + "/net.d", Log: testr.New(t)}
		ms = append(ms, m)
	}
	if out, err := exec.Command("ip", "netns", "exec", ms[0].NS, "ping", "-c1", "-W2", ms[1].ip).CombinedOutput(); err != nil {
		t.Fatalf("underlay n1 -> n2 does not work: %v\n%s", err, out)
	}

	apply := func() {
		for _, m := range ms {
			s := desiredOn(t, m.Node, spec, subnets, m.name, m.ip)
			if _, err := m.a.Apply(ctx, s); err != nil {
				t.Fatalf("%s: apply: %v", m.name, err)
			}
		}
	}
	apply()

	// One hand-made pod per node: a veth from a fresh namespace into kbr0, as the CNI
	// plugin would make it.
	for i, m := range ms {
		s := desiredOn(t, m.Node, spec, subnets, m.name, m.ip)
		m.pod, m.podIP = "ovsmt-p"+m.name+"-"+id, fmt.Sprintf("10.244.%d.11", i+1)
		nodetest.Sh(t, "ip", "netns", "add", m.pod)
		pod := m.pod
		t.Cleanup(func() { exec.Command("ip", "netns", "del", pod).Run() })
		mtu := fmt.Sprint(s.MTU)
		nodetest.Sh(t, "ip", "link", "add", "eth0", "mtu", mtu, "netns", m.pod, "type", "veth", "peer", "name", "vpod", "mtu", mtu, "netns", m.NS)
		offloadsOff(t, m.pod, "eth0")
		offloadsOff(t, m.NS, "vpod")
		nodetest.Sh(t, "ip", "-n", m.NS, "link", "set", "vpod", "master", "kbr0", "up")
		nodetest.Sh(t, "ip", "-n", m.pod, "addr", "add", m.podIP+"/24", "dev", "eth0")
		nodetest.Sh(t, "ip", "-n", m.pod, "link", "set", "lo", "up")
		nodetest.Sh(t, "ip", "-n", m.pod, "link", "set", "eth0", "up")
		nodetest.Sh(t, "ip", "-n", m.pod, "route", "add", "default", "via", s.Gateway.String())
	}

	pingBoth := func(label string) {
		t.Helper()
		for _, pair := range [][2]*member{{ms[0], ms[1]}, {ms[1], ms[0]}} {
			src, dst := pair[0], pair[1]
			var out []byte
			var err error
			// The first packets after a topology change can be lost while ARP and MAC
			// learning settle (see ovs-userspace-sim.sh): allow a few attempts.
			for attempt := 0; attempt < 5; attempt++ {
				out, err = exec.Command("ip", "netns", "exec", src.pod, "ping", "-c3", "-i0.3", "-W1", dst.podIP).CombinedOutput()
				if err == nil && strings.Contains(string(out), " 0% packet loss") {
					break
				}
			}
			if err != nil || !strings.Contains(string(out), " 0% packet loss") {
				t.Errorf("%s: pod on %s -> %s: %v\n%s", label, src.name, dst.podIP, err, out)
			}
		}
	}

	waitSTP(t, ms[0].Node, ms[1].Node)
	pingBoth("GRE")
	t.Logf("GRE, n1 `ovs-vsctl show`:\n%s", ms[0].Vsctl("show"))
	t.Logf("GRE, n1 `ovs-appctl stp/show obr0`:\n%s", ms[0].Appctl("stp/show", "obr0"))

	spec.Tunnel.Type = v1alpha1.TunnelVXLAN
	apply()
	for _, m := range ms {
		if got := sortedLines(m.Vsctl("list-ports", "obr0")); len(got) != 2 || !strings.HasPrefix(got[1], "vxlan-") {
			t.Errorf("%s ports after the switch: %v", m.name, got)
		}
	}
	waitSTP(t, ms[0].Node, ms[1].Node)
	pingBoth("VXLAN")
	t.Logf("VXLAN, n1 `ovs-vsctl show`:\n%s", ms[0].Vsctl("show"))
	t.Logf("VXLAN, n1 `ovs-appctl stp/show obr0`:\n%s", ms[0].Appctl("stp/show", "obr0"))

	// With both ends alive, BFD reports the peer up, and so will NodeSubnet status.
	nodetest.WaitFor(t, 20*time.Second, "BFD up on both tunnels", func() bool {
		for _, m := range ms {
			s := desiredOn(t, m.Node, spec, subnets, m.name, m.ip).OVS
			ports, err := m.a.OVS.Ports(ctx, s.Bridge.Name)
			if r := tunnelReport(s, ports); err != nil || r.Summary.Desired != 1 || r.Summary.Up != 1 {
				return false
			}
		}
		return true
	})
}

// waitSTP waits until no port of obr0 on any node is listening or learning.
func waitSTP(t *testing.T, nodes ...*nodetest.Node) {
	t.Helper()
	start := time.Now()
	nodetest.WaitFor(t, 60*time.Second, "STP convergence", func() bool {
		for _, n := range nodes {
			out, err := exec.Command("ovs-appctl", "-t", n.Ctl(), "stp/show", "obr0").CombinedOutput()
			s := string(out)
			if err != nil || strings.Contains(s, "listening") || strings.Contains(s, "learning") || !strings.Contains(s, "forwarding") {
				return false
			}
		}
		return true
	})
	t.Logf("STP converged in %s", time.Since(start).Round(100*time.Millisecond))
}

// offloadsOff is `ethtool -K dev rx off tx off tso off gso off gro off` inside ns: the
// userspace datapath reads frames through AF_PACKET and cannot handle offloaded ones.
func offloadsOff(t *testing.T, ns, dev string) {
	t.Helper()
	nodetest.Sh(t, append([]string{"ip", "netns", "exec", ns, "ethtool", "-K", dev}, testbed.OffloadArgs...)...)
}
