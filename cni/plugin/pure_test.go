package plugin

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestHostVethName(t *testing.T) {
	a := HostVethName("0123456789abcdef", "eth0")
	if len(a) != 15 || !strings.HasPrefix(a, "veth") {
		t.Errorf("HostVethName = %q, want veth + 11 characters", a)
	}
	if a != HostVethName("0123456789abcdef", "eth0") {
		t.Error("not stable")
	}
	if a == HostVethName("0123456789abcdef", "net1") || a == HostVethName("0123456789abcdeg", "eth0") {
		t.Error("different attachments share a name")
	}
}

func TestAliasRoundTrip(t *testing.T) {
	a := attachment{Network: "ovsmesh", ContainerID: "c0ffee-1.2_3", IfName: "eth0"}
	got, ok := parseAlias(a.Alias())
	if !ok || got != a {
		t.Errorf("parseAlias(%q) = %+v, %v", a.Alias(), got, ok)
	}
	for _, bad := range []string{"", "ovsmesh/", "ovsmesh/net/id", "ovsmesh/net/id/eth0/x", "other/net/id/eth0", "ovsmesh//id/eth0"} {
		if _, ok := parseAlias(bad); ok {
			t.Errorf("parseAlias(%q) accepted", bad)
		}
	}
}

func TestNegotiateVersion(t *testing.T) {
	debianHostLocal := []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"}
	cases := []struct {
		net       string
		supported []string
		want      string // "" = error
	}{
		{"1.1.0", debianHostLocal, "1.0.0"},
		{"1.0.0", debianHostLocal, "1.0.0"},
		{"1.1.0", append(debianHostLocal, "1.1.0"), "1.1.0"},
		{"1.0.0", []string{"1.1.0"}, ""},          // only newer
		{"1.1.0", []string{"0.1.0", "0.2.0"}, ""}, // too old to convert
		{"1.1.0", []string{"0.4.0", "0.3.1"}, "0.4.0"},
	}
	for _, tc := range cases {
		got, err := negotiateVersion(tc.net, tc.supported)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("negotiateVersion(%s, %v) = %q, %v; want %q", tc.net, tc.supported, got, err, tc.want)
		}
	}
}

func TestRewriteVersion(t *testing.T) {
	conf := []byte(`{"cniVersion":"1.1.0","name":"ovsmesh","type":"ovsmesh","bridge":"kbr0",
		"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]]},
		"prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],
			"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":0}]}}`)
	out, err := rewriteVersion(conf, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		CNIVersion string         `json:"cniVersion"`
		Bridge     string         `json:"bridge"`
		IPAM       map[string]any `json:"ipam"`
		Prev       struct {
			CNIVersion string `json:"cniVersion"`
			IPs        []struct{ Address string }
		} `json:"prevResult"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.CNIVersion != "1.0.0" || m.Prev.CNIVersion != "1.0.0" || m.Bridge != "kbr0" || m.IPAM["ranges"] == nil ||
		len(m.Prev.IPs) != 1 || m.Prev.IPs[0].Address != "10.244.1.5/24" {
		t.Errorf("rewriteVersion = %s", out)
	}
	same, err := rewriteVersion(conf, "1.1.0")
	if err != nil || string(same) != string(conf) {
		t.Errorf("rewriting to the same version changed the config: %v", err)
	}
}

func TestHostLocalStore(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"10.244.1.2":         "keep\r\neth0",
		"10.244.1.3":         "stale\r\neth0",
		"10.244.1.4":         "keep\r\nnet1", // same container, other interface: stale
		"10.244.1.5":         "legacy-kept",  // pre-0.8 format, container still valid
		"10.244.1.6":         "legacy-gone",
		"lock":               "",
		"last_reserved_ip.0": "10.244.1.6",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := readHostLocalStore(dir)
	if err != nil || len(res) != 5 {
		t.Fatalf("readHostLocalStore = %+v, %v; want 5 reservations", res, err)
	}
	valid := map[attachmentKey]bool{{"keep", "eth0"}: true, {"legacy-kept", "eth0"}: true}
	ids := map[string]bool{"keep": true, "legacy-kept": true}
	var stale []string
	for _, r := range staleReservations(res, valid, ids) {
		stale = append(stale, r.IP.String())
	}
	if strings.Join(stale, ",") != "10.244.1.3,10.244.1.4,10.244.1.6" {
		t.Errorf("stale = %v", stale)
	}
	if none, err := readHostLocalStore(filepath.Join(dir, "missing")); err != nil || none != nil {
		t.Errorf("missing store: %v, %v", none, err)
	}
	if got := hostLocalStoreDir("", "ovsmesh"); got != "/var/lib/cni/networks/ovsmesh" {
		t.Errorf("default store dir %s", got)
	}
}

func TestBuildResult(t *testing.T) {
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	addr := net.IPNet{IP: net.ParseIP("10.244.1.5").To4(), Mask: net.CIDRMask(24, 32)}
	gw := net.ParseIP("10.244.1.1").To4()
	ipamRes := &current.Result{
		IPs:    []*current.IPConfig{{Address: addr, Gateway: gw}},
		Routes: []*types.Route{{Dst: *cluster}},
	}
	links := attachedLinks{Bridge: "kbr0", Host: "vethabc", Pod: "eth0", Sandbox: "/run/netns/p", MTU: 1450}
	res, err := buildResult(ipamRes, links)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 3 || res.Interfaces[ifPod].Sandbox != "/run/netns/p" || res.Interfaces[ifPod].Mtu != 1450 {
		t.Errorf("interfaces %+v", res.Interfaces)
	}
	if *res.IPs[0].Interface != ifPod || ipamRes.IPs[0].Interface != nil {
		t.Error("address not put on the pod interface, or the IPAM result was modified")
	}
	var routes []string
	for _, r := range res.Routes {
		routes = append(routes, r.Dst.String()+" via "+r.GW.String())
	}
	if strings.Join(routes, ",") != "10.244.0.0/16 via 10.244.1.1,0.0.0.0/0 via 10.244.1.1" {
		t.Errorf("routes %v", routes)
	}

	// A default route from IPAM is kept, not duplicated.
	_, def, _ := net.ParseCIDR("0.0.0.0/0")
	ipamRes.Routes = append(ipamRes.Routes, &types.Route{Dst: *def})
	if res, _ := buildResult(ipamRes, links); len(res.Routes) != 2 {
		t.Errorf("routes %v, want IPAM's two", res.Routes)
	}

	ipamRes.IPs[0].Gateway = nil
	if _, err := buildResult(ipamRes, links); err == nil {
		t.Error("no error for an address without a gateway")
	}
	if _, err := buildResult(&current.Result{}, links); err == nil {
		t.Error("no error without addresses")
	}
}

func TestGCPlan(t *testing.T) {
	cases := []struct {
		ipam               string
		supports11         bool
		forward, readStore bool
	}{
		{"host-local", false, false, true}, // Debian's 1.1.1: no GC at all
		{"host-local", true, true, true},   // upstream: claims 1.1.0, GC is a no-op
		{"whereabouts", true, true, false},
		{"dhcp", false, false, false},
	}
	for _, tc := range cases {
		f, r := gcPlan(tc.ipam, tc.supports11)
		if f != tc.forward || r != tc.readStore {
			t.Errorf("gcPlan(%s, %v) = %v, %v; want %v, %v", tc.ipam, tc.supports11, f, r, tc.forward, tc.readStore)
		}
	}
}

func TestJoinErrors(t *testing.T) {
	if joinErrors(nil) != nil {
		t.Error("no errors is not nil")
	}
	one := types.NewError(types.ErrTryAgainLater, "busy", "")
	if joinErrors([]error{one}) != one {
		t.Error("a single error lost its identity")
	}
	var te *types.Error
	err := joinErrors([]error{one, os.ErrNotExist})
	if !errors.As(err, &te) || te.Code != types.ErrInternal || !strings.Contains(te.Details, "busy") || !strings.Contains(te.Details, "not exist") {
		t.Errorf("joinErrors = %v", err)
	}
}

// TestGCWithoutValidAttachmentsRemovesNothing: the key missing is not an empty list: GC
// answers with CNI error 7 before it looks at any link or reservation.
func TestGCWithoutValidAttachmentsRemovesNothing(t *testing.T) {
	p := &Plugin{}
	err := p.GC(&skel.CmdArgs{StdinData: []byte(`{"cniVersion":"1.1.0","name":"ovsmesh","type":"ovsmesh","bridge":"kbr0","ipam":{"type":"host-local"}}`)})
	var e *types.Error
	if !errors.As(err, &e) || e.Code != types.ErrInvalidNetworkConfig || !strings.Contains(e.Msg, "nothing removed") {
		t.Errorf("GC without the key: %v", err)
	}
	if !hasKey([]byte(`{"cni.dev/valid-attachments":[]}`), "cni.dev/valid-attachments") || hasKey([]byte(`{"a":1}`), "cni.dev/valid-attachments") {
		t.Error("hasKey")
	}
}
