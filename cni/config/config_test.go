package config

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func nodeInput() Input {
	return Input{
		Bridge:      "kbr0",
		Subnet:      netip.MustParsePrefix("10.244.1.0/24"),
		Gateway:     netip.MustParseAddr("10.244.1.1"),
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		MTU:         1450,
		Portmap:     true,
	}
}

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("Render output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("Render =\n%s\nwant\n%s", got, want)
	}
}

// TestRenderAgentContract pins the file the agent writes (the contract in the CNI issue).
func TestRenderAgentContract(t *testing.T) {
	got, err := Render(nodeInput())
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, `{"cniVersion":"1.1.0","name":"ovsmesh","plugins":[
		{"type":"ovsmesh","bridge":"kbr0","mtu":1450,
		 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24","gateway":"10.244.1.1"}]],
		         "routes":[{"dst":"10.244.0.0/16"},{"dst":"0.0.0.0/0"}]}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	again, _ := Render(nodeInput())
	if string(again) != string(got) {
		t.Error("Render is not deterministic")
	}
}

func TestRenderOptions(t *testing.T) {
	in := nodeInput()
	in.Portmap, in.MTU, in.ClusterCIDR = false, 0, netip.Prefix{}
	in.CNIVersion, in.Name, in.IPAMDataDir = "1.0.0", "pods", "/var/lib/ovsmesh/ipam"
	got, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, `{"cniVersion":"1.0.0","name":"pods","plugins":[
		{"type":"ovsmesh","bridge":"kbr0",
		 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24","gateway":"10.244.1.1"}]],
		         "routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/var/lib/ovsmesh/ipam"}}]}`)
}

// TestRenderedConfigParses: what the agent writes is what the plugin accepts.
func TestRenderedConfigParses(t *testing.T) {
	b, err := Render(nodeInput())
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string
		Name       string
		Plugins    []map[string]any
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	entry := list.Plugins[0]
	entry["name"], entry["cniVersion"] = list.Name, list.CNIVersion // what libcni injects
	stdin, _ := json.Marshal(entry)
	c, err := Parse(stdin)
	if err != nil {
		t.Fatalf("Parse(rendered entry): %v", err)
	}
	if c.Type != PluginType || c.Bridge != "kbr0" || c.MTU != 1450 || c.IPAM.Type != "host-local" ||
		c.IPAM.Ranges[0][0].Subnet != "10.244.1.0/24" || c.Name != DefaultNetworkName {
		t.Errorf("parsed %+v", c)
	}
}

func TestRenderRejects(t *testing.T) {
	cases := map[string]struct {
		edit    func(*Input)
		mention string
	}{
		"version":           {func(i *Input) { i.CNIVersion = "0.4.0" }, "CNIVersion"},
		"name":              {func(i *Input) { i.Name = "-bad" }, "Name"},
		"no bridge":         {func(i *Input) { i.Bridge = "" }, "Bridge"},
		"long bridge":       {func(i *Input) { i.Bridge = "a-very-long-bridge" }, "Bridge"},
		"no subnet":         {func(i *Input) { i.Subnet = netip.Prefix{} }, "Subnet"},
		"ipv6 subnet":       {func(i *Input) { i.Subnet = netip.MustParsePrefix("fd00::/64") }, "Subnet"},
		"host bits":         {func(i *Input) { i.Subnet = netip.MustParsePrefix("10.244.1.7/24") }, "10.244.1.0/24"},
		"tiny subnet":       {func(i *Input) { i.Subnet = netip.MustParsePrefix("10.244.1.0/31") }, "Subnet"},
		"gateway outside":   {func(i *Input) { i.Gateway = netip.MustParseAddr("10.244.2.1") }, "Gateway"},
		"gateway network":   {func(i *Input) { i.Gateway = netip.MustParseAddr("10.244.1.0") }, "Gateway"},
		"gateway broadcast": {func(i *Input) { i.Gateway = netip.MustParseAddr("10.244.1.255") }, "Gateway"},
		"cluster too small": {func(i *Input) { i.ClusterCIDR = netip.MustParsePrefix("10.244.1.0/25") }, "ClusterCIDR"},
		"cluster elsewhere": {func(i *Input) { i.ClusterCIDR = netip.MustParsePrefix("10.96.0.0/16") }, "ClusterCIDR"},
		"mtu":               {func(i *Input) { i.MTU = 40 }, "MTU"},
		"relative dataDir":  {func(i *Input) { i.IPAMDataDir = "ipam" }, "IPAMDataDir"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := nodeInput()
			tc.edit(&in)
			_, err := Render(in)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Render: %v, want an error mentioning %q", err, tc.mention)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]struct {
		stdin string
		code  uint
	}{
		"malformed":    {`{"bridge":`, types.ErrDecodingFailure},
		"wrong type":   {`{"bridge":"kbr0","mtu":"big","ipam":{"type":"host-local"}}`, types.ErrDecodingFailure},
		"no bridge":    {`{"ipam":{"type":"host-local"}}`, types.ErrInvalidNetworkConfig},
		"bad bridge":   {`{"bridge":"a/b","ipam":{"type":"host-local"}}`, types.ErrInvalidNetworkConfig},
		"no ipam":      {`{"bridge":"kbr0"}`, types.ErrInvalidNetworkConfig},
		"no ipam type": {`{"bridge":"kbr0","ipam":{}}`, types.ErrInvalidNetworkConfig},
		"mtu":          {`{"bridge":"kbr0","mtu":70000,"ipam":{"type":"host-local"}}`, types.ErrInvalidNetworkConfig},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.stdin))
			var te *types.Error
			if !errors.As(err, &te) || te.Code != tc.code || te.Msg == "" {
				t.Errorf("Parse: %v, want a CNI error with code %d", err, tc.code)
			}
		})
	}
	if c, err := Parse([]byte(`{"bridge":"kbr0","ipam":{"type":"host-local"},"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`)); err != nil || len(c.ValidAttachments) != 1 {
		t.Errorf("Parse of a GC config: %+v, %v", c, err)
	}
}
