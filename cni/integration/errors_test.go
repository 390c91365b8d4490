package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// TestBadInputGetsCNIErrors execs the plugin with broken input the way libcni would (but
// with stdin libcni itself would refuse to send) and checks the error JSON's code and
// message, and that nothing was left behind.
func TestBadInputGetsCNIErrors(t *testing.T) {
	n := newNode(t, nodeOpts{})
	l := n.list(n.input("1.1.0"))
	p := n.newPod(t)

	// good is the stdin the runtime would send for ADD; each case breaks one thing.
	good := func(edit func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(l.Plugins[0].Bytes, &m); err != nil {
			t.Fatal(err)
		}
		m["name"], m["cniVersion"] = l.Name, l.CNIVersion
		if edit != nil {
			edit(m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }

	cases := []struct {
		name    string
		cmd     string
		stdin   []byte
		netns   string
		code    uint
		mention string
	}{
		{"malformed JSON", "ADD", []byte(`{"cniVersion":"1.1.0","name":"ovsmesh","type":`), "", types.ErrDecodingFailure, ""},
		{"version too old", "ADD", good(set("cniVersion", "0.4.0")), "", types.ErrIncompatibleCNIVersion, ""},
		{"version from the future", "ADD", good(set("cniVersion", "2.0.0")), "", types.ErrIncompatibleCNIVersion, ""},
		{"GC at 1.0.0", "GC", good(set("cniVersion", "1.0.0")), "", types.ErrIncompatibleCNIVersion, "GC"},
		{"missing name", "ADD", good(del("name")), "", types.ErrInvalidNetworkConfig, "name"},
		{"missing bridge", "ADD", good(del("bridge")), "", types.ErrInvalidNetworkConfig, `"bridge"`},
		{"invalid bridge name", "ADD", good(set("bridge", "this-name-is-too-long")), "", types.ErrInvalidNetworkConfig, "this-name-is-too-long"},
		{"unknown bridge", "ADD", good(set("bridge", "nosuchbr0")), "", types.ErrTryAgainLater, "nosuchbr0"},
		{"bridge is not a bridge", "ADD", good(set("bridge", "lo")), "", types.ErrInvalidNetworkConfig, "not a bridge"},
		{"missing ipam", "ADD", good(del("ipam")), "", types.ErrInvalidNetworkConfig, `"ipam"`},
		{"ipam plugin not installed", "ADD", good(set("ipam", map[string]any{"type": "no-such-ipam"})), "", types.ErrInvalidNetworkConfig, "no-such-ipam"},
		{"mtu out of range", "ADD", good(set("mtu", 20)), "", types.ErrInvalidNetworkConfig, `"mtu"`},
		{"mtu not a number", "ADD", good(set("mtu", "1450")), "", types.ErrDecodingFailure, ""},
		{"pod netns missing", "ADD", good(nil), "/run/netns/" + prefix() + "-gone", types.ErrUnknownContainer, "does not exist"},
		{"CHECK without prevResult", "CHECK", good(nil), "", types.ErrInvalidNetworkConfig, "prevResult"},
		{"STATUS with unknown bridge", "STATUS", good(set("bridge", "nosuchbr0")), "", config.ErrPluginNotAvailable, ""},
		{"unknown command", "FROB", good(nil), "", types.ErrInvalidEnvironmentVariables, "FROB"},
	}
	exec := &invoke.RawExec{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			netns := tc.netns
			if netns == "" {
				netns = p.path
			}
			args := &invoke.Args{Command: tc.cmd, ContainerID: p.id, NetNS: netns, IfName: "eth0", Path: binDir}
			err := n.try(func() error {
				_, err := exec.ExecPlugin(ctx(t), filepath.Join(binDir, config.PluginType), tc.stdin, args.AsEnv())
				return err
			})
			if err == nil {
				t.Fatalf("%s succeeded", tc.cmd)
			}
			te := cniError(t, err, tc.code)
			if te.Msg == "" || !strings.Contains(te.Msg+" "+te.Details, tc.mention) {
				t.Errorf("error %q (details %q) should mention %q", te.Msg, te.Details, tc.mention)
			}
			if v := n.vethNames(); len(v) != 0 {
				t.Errorf("veths left behind: %v", v)
			}
			if r := n.reservations(l.Name); len(r) != 0 {
				t.Errorf("addresses left reserved: %v", r)
			}
		})
	}
}

// TestVersion: the plugin answers VERSION with the spec versions it implements.
func TestVersion(t *testing.T) {
	n := newNode(t, nodeOpts{})
	var got []string
	n.do(func() error {
		info, err := n.cni.GetVersionInfo(ctx(t), config.PluginType)
		if err == nil {
			got = info.SupportedVersions()
		}
		return err
	})
	if strings.Join(got, ",") != "1.0.0,1.1.0" {
		t.Errorf("supported versions %v, want [1.0.0 1.1.0]", got)
	}
}
