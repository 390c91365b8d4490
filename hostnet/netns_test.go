package hostnet

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

// testNS creates a fresh network namespace with a per-run unique name and returns a Host bound
// to it. Everything is removed by t.Cleanup, also on failure.
func testNS(t *testing.T) (string, *Host) {
	t.Helper()
	for _, bin := range []string{"ip", "nft", "ethtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: run `make testbed` to install the test bed", bin)
		}
	}
	name := "ovsmt-hn-" + testbed.RunID(4)
	testbed.NetNS(t, name)
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := NewAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return name, h
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipLink is the part of `ip -j link` the tests look at.
type ipLink struct {
	Index   int    `json:"ifindex"`
	Name    string `json:"ifname"`
	MTU     int    `json:"mtu"`
	Master  string `json:"master"`
	Flags   []string
	Alias   string `json:"ifalias"`
	Address string `json:"address"`
	Info    struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func links(t *testing.T, ns string) map[string]ipLink {
	t.Helper()
	var ls []ipLink
	if err := json.Unmarshal([]byte(sh(t, "ip", "-n", ns, "-d", "-j", "link", "show")), &ls); err != nil {
		t.Fatal(err)
	}
	m := map[string]ipLink{}
	for _, l := range ls {
		m[l.Name] = l
	}
	return m
}

func addrs(t *testing.T, ns, dev string) []string {
	t.Helper()
	var out []struct {
		AddrInfo []struct {
			Family, Local string
			Prefixlen     int
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(sh(t, "ip", "-n", ns, "-j", "addr", "show", "dev", dev)), &out); err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, o := range out {
		for _, a := range o.AddrInfo {
			if a.Family == "inet" {
				s = append(s, a.Local+"/"+strconv.Itoa(a.Prefixlen))
			}
		}
	}
	return s
}

func nftTables(t *testing.T, ns string) []string {
	t.Helper()
	var out struct {
		Nftables []struct {
			Table *struct{ Family, Name string } `json:"table"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(sh(t, "ip", "netns", "exec", ns, "nft", "-j", "list", "tables")), &out); err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range out.Nftables {
		if e.Table != nil {
			s = append(s, e.Table.Family+" "+e.Table.Name)
		}
	}
	return s
}
