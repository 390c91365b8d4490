package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/ovsmesh/ovsmesh/cni/config"
	"github.com/ovsmesh/ovsmesh/cni/plugin"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

// TestAddCheckDel runs the full lifecycle at each supported spec version and checks the
// result, the pod's interface, the host veth, the IPAM store, CHECK catching a broken
// attachment, and a second DEL.
func TestAddCheckDel(t *testing.T) {
	for _, version := range []string{"1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			n := newNode(t, nodeOpts{})
			l := n.list(n.input(version))
			p := n.newPod(t)

			r := n.mustAdd(t, l, p)
			hostName := plugin.HostVethName(p.id, "eth0")
			if len(r.Interfaces) != 3 || r.Interfaces[0].Name != n.bridge || r.Interfaces[1].Name != hostName ||
				r.Interfaces[2].Name != "eth0" || r.Interfaces[2].Sandbox != p.path {
				t.Fatalf("interfaces %+v, want bridge %s, host %s, eth0 in %s", r.Interfaces, n.bridge, hostName, p.path)
			}
			ip := podIP(t, r)
			if !n.subnet.Contains(addrOf(ip)) || ip.Equal(n.gw.AsSlice()) {
				t.Errorf("pod address %s not a pod address of %s", ip, n.subnet)
			}
			if ipc := r.IPs[0]; !ipc.Gateway.Equal(n.gw.AsSlice()) || ipc.Interface == nil || *ipc.Interface != 2 {
				t.Errorf("ip config %+v: want gateway %s on interface 2", ipc, n.gw)
			}
			wantRoutes := map[string]bool{"0.0.0.0/0 via " + n.gw.String(): false, "10.244.0.0/16 via " + n.gw.String(): false}
			for _, rt := range r.Routes {
				wantRoutes[rt.Dst.String()+" via "+rt.GW.String()] = true
			}
			for rt, seen := range wantRoutes {
				if !seen {
					t.Errorf("result lacks route %s: %+v", rt, r.Routes)
				}
			}

			// The pod side: named eth0, MTU from the config, the address, default route via the gateway.
			inPod(t, p, func() error {
				l, err := netlink.LinkByName("eth0")
				if err != nil {
					return err
				}
				if l.Attrs().MTU != 1450 || l.Attrs().HardwareAddr.String() != r.Interfaces[2].Mac {
					t.Errorf("eth0 MTU %d MAC %s, want 1450 and %s", l.Attrs().MTU, l.Attrs().HardwareAddr, r.Interfaces[2].Mac)
				}
				// The MAC is derived from the address, so a reused address keeps neighbour entries valid.
				ip4 := ip.To4()
				if want := fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x", ip4[0], ip4[1], ip4[2], ip4[3]); l.Attrs().HardwareAddr.String() != want {
					t.Errorf("eth0 MAC %s, want %s (0a:58 + its address %s)", l.Attrs().HardwareAddr, want, ip)
				}
				addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
				if err != nil || len(addrs) != 1 || !addrs[0].IP.Equal(ip) {
					t.Errorf("eth0 addresses %v (%v), want %s", addrs, err, ip)
				}
				routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
				hasDefault := false
				for _, rt := range routes {
					hasDefault = hasDefault || (rt.Dst == nil || rt.Dst.String() == "0.0.0.0/0") && rt.Gw.Equal(n.gw.AsSlice())
				}
				if err != nil || !hasDefault {
					t.Errorf("no default route via %s in the pod: %v (%v)", n.gw, routes, err)
				}
				return nil
			})

			// The host side: stable name, on the bridge, up, tagged, same MTU.
			host, err := n.link(hostName)
			if err != nil {
				t.Fatalf("host veth %s: %v", hostName, err)
			}
			br, err := n.link(n.bridge)
			if err != nil {
				t.Fatal(err)
			}
			if a := host.Attrs(); a.MasterIndex != br.Attrs().Index || a.Flags&net.FlagUp == 0 || a.MTU != 1450 ||
				a.Alias != "ovsmesh/"+config.DefaultNetworkName+"/"+p.id+"/eth0" {
				t.Errorf("host veth master %d (bridge %d), flags %v, MTU %d, alias %q", a.MasterIndex, br.Attrs().Index, a.Flags, a.MTU, a.Alias)
			}
			if got := n.reservations(l.Name); got[ip.String()] != p.id+"/eth0" {
				t.Errorf("host-local store %v, want %s held by %s/eth0", got, ip, p.id)
			}

			if err := n.check(t, l, p.rt()); err != nil {
				t.Fatalf("CHECK of a fresh attachment: %v", err)
			}
			// CHECK must notice a broken attachment: take the default route away.
			inPod(t, p, func() error {
				return netlink.RouteDel(&netlink.Route{Dst: nil, Gw: ip4(n.gw.String())})
			})
			if err := n.check(t, l, p.rt()); err == nil || !strings.Contains(err.Error(), "0.0.0.0/0") {
				t.Errorf("CHECK without the default route: %v, want an error naming 0.0.0.0/0", err)
			}

			if err := n.del(t, l, p.rt()); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if podHasLink(t, p, "eth0") {
				t.Error("eth0 still in the pod after DEL")
			}
			if v := n.vethNames(); len(v) != 0 {
				t.Errorf("veths left on the node after DEL: %v", v)
			}
			if got := n.reservations(l.Name); len(got) != 0 {
				t.Errorf("addresses still reserved after DEL: %v", got)
			}
			if err := n.del(t, l, p.rt()); err != nil {
				t.Errorf("second DEL: %v", err)
			}
		})
	}
}

// TestDelIsIdempotent covers DEL after the pod netns is gone, DEL twice, DEL without a
// netns and DEL of an attachment that never existed: all succeed and the address is freed.
func TestDelIsIdempotent(t *testing.T) {
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	p := n.newPod(t)
	n.mustAdd(t, l, p)
	if len(n.reservations(l.Name)) != 1 {
		t.Fatalf("want one reservation after ADD, got %v", n.reservations(l.Name))
	}

	testbed.DelNetNS(t, p.name) // the runtime tore the sandbox down before calling DEL
	for i := range 2 {
		if err := n.del(t, l, p.rt()); err != nil {
			t.Fatalf("DEL #%d with the netns gone: %v", i+1, err)
		}
	}
	if got := n.reservations(l.Name); len(got) != 0 {
		t.Errorf("address not released: %v", got)
	}
	if _, err := n.link(plugin.HostVethName(p.id, "eth0")); err == nil {
		t.Error("host veth still there after DEL")
	}

	noNS := p.rt()
	noNS.NetNS = ""
	if err := n.del(t, l, noNS); err != nil {
		t.Errorf("DEL without CNI_NETNS: %v", err)
	}
	// Runtimes may leave the netns path behind as a plain file once it is unmounted.
	unmounted := p.rt()
	unmounted.NetNS = filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(unmounted.NetNS, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.del(t, l, unmounted); err != nil {
		t.Errorf("DEL with an unmounted netns path: %v", err)
	}
	ghost := &pod{name: "never", path: "/run/netns/" + prefix() + "-never", id: "ctr-" + prefix() + "-never"}
	if err := n.del(t, l, ghost.rt()); err != nil {
		t.Errorf("DEL of an attachment that never existed: %v", err)
	}
}

// TestPodsPingEachOther checks the data path: two pods on one node reach each other
// through the bridge, and the gateway (the node) through their default route.
func TestPodsPingEachOther(t *testing.T) {
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	a, b := n.newPod(t), n.newPod(t)
	ipA := podIP(t, n.mustAdd(t, l, a))
	ipB := podIP(t, n.mustAdd(t, l, b))
	t.Cleanup(func() { _ = n.del(t, l, a.rt()); _ = n.del(t, l, b.rt()) })

	ping(t, a, ipB)
	ping(t, b, ipA)
	ping(t, a, n.gw.AsSlice())
}

func ip4(s string) net.IP { return net.ParseIP(s).To4() }

// TestMTUDefaultsToTheBridge: without "mtu" in the config both veth ends take the bridge's
// MTU (the agent sets it to underlay minus tunnel overhead).
func TestMTUDefaultsToTheBridge(t *testing.T) {
	n := newNode(t, nodeOpts{})
	n.do(func() error {
		br, err := netlink.LinkByName(n.bridge)
		if err != nil {
			return err
		}
		return netlink.LinkSetMTU(br, 1400)
	})
	in := n.input("1.1.0")
	in.MTU = 0
	l := n.list(in)
	p := n.newPod(t)
	r := n.mustAdd(t, l, p)
	t.Cleanup(func() { _ = n.del(t, l, p.rt()) })

	host, err := n.link(r.Interfaces[1].Name)
	if err != nil || host.Attrs().MTU != 1400 {
		t.Errorf("host veth MTU: %v (%v), want 1400", host, err)
	}
	inPod(t, p, func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil && l.Attrs().MTU != 1400 {
			t.Errorf("pod eth0 MTU %d, want 1400", l.Attrs().MTU)
		}
		return err
	})
	if err := n.check(t, l, p.rt()); err != nil {
		t.Errorf("CHECK: %v", err)
	}
}
