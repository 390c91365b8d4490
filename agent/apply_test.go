package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/ovsmesh/ovsmesh/agent/nodetest"
	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// testCluster is a netdev (userspace) cluster with fast STP timers and BFD.
func testCluster() v1alpha1.NetworkClusterSpec {
	s := defaultSpec()
	s.DatapathType = v1alpha1.DatapathNetdev
	s.LoopPrevention = v1alpha1.LoopPreventionSpec{Protocol: v1alpha1.ProtocolSTP, Priority: 32768, HelloTime: 1, MaxAge: 6, ForwardDelay: 4}
	s.Tunnel.BFD = true
	return s
}

// desiredOn computes the node state the way the reconciler does: the underlay MTU read from
// the node's namespace.
func desiredOn(t *testing.T, n *nodetest.Node, spec v1alpha1.NetworkClusterSpec, subnets []v1alpha1.NodeSubnet, name, ip string) NodeState {
	t.Helper()
	u, err := n.Host().FindUnderlay("", mustAddr(ip))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Desired(spec, subnets, name, u.MTU)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sortedLines(s string) []string {
	f := strings.Fields(s)
	slices.Sort(f)
	return f
}

// TestApplyAgainstRealOVS runs the reconcile's apply step (host side, OVS side, CNI config)
// against a private ovsdb-server and ovs-vswitchd in a test namespace: the first apply builds
// everything, the second changes nothing, a GRE→VXLAN switch replaces only the tunnel ports,
// peers follow the NodeSubnets, an agent restart and an ovs-vswitchd restart change nothing,
// and cleanup leaves nothing behind.
func TestApplyAgainstRealOVS(t *testing.T) {
	n := nodetest.New(t, "ovsmt-ag-"+nodetest.RunID())
	n.Underlay("172.30.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	spec := testCluster()
	subnets := threeNodes()
	a := &Applier{Host: n.Host(), OVS: NewOVSSide(n.Dial()), CNIConfDir: filepath.Join(n.Dir, "net.d"), Log: testr.New(t)}

	s := desiredOn(t, n, spec, subnets, "n1", "172.30.0.1")
	r, err := a.Apply(ctx, s)
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if r.OVSOps == 0 || len(r.HostChanges) == 0 || !r.CNIWritten {
		t.Fatalf("first apply changed nothing? %+v", r)
	}

	// OVS side, as ovs-vsctl sees it.
	if got := n.Vsctl("get", "Bridge", "obr0", "stp_enable", "rstp_enable", "datapath_type", "fail_mode",
		"other_config:stp-forward-delay", "other_config:stp-hello-time", "other_config:stp-max-age", "other_config:stp-priority",
		"external_ids:ovsmesh.io/owner"); got != "true\nfalse\nnetdev\nstandalone\n\"4\"\n\"1\"\n\"6\"\n\"32768\"\novsmesh" {
		t.Errorf("obr0 settings:\n%s", got)
	}
	if got := sortedLines(n.Vsctl("list-ports", "obr0")); !reflect.DeepEqual(got, []string{"gre-ac1e0002", "gre-ac1e0003", "vobr0"}) {
		t.Errorf("obr0 ports = %v", got)
	}
	if got := n.Vsctl("get", "Interface", "gre-ac1e0003", "type", "options:remote_ip", "bfd:enable"); got != "gre\n\"172.30.0.3\"\n\"true\"" {
		t.Errorf("gre-ac1e0003:\n%s", got)
	}
	if got := n.Vsctl("get", "Interface", "vobr0", "type", "error"); got != "\"\"\n[]" {
		t.Errorf("vobr0 interface (system port, no error):\n%s", got)
	}
	if r.Tunnels.Count != 2 || r.Tunnels.Summary.Desired != 2 || r.Tunnels.Summary.Missing != 0 {
		t.Errorf("result tunnels = %+v", r.Tunnels)
	}
	brUUID := n.Vsctl("get", "Bridge", "obr0", "_uuid")

	// Host side.
	ls := n.Links()
	if l := ls["kbr0"]; l.Info.Kind != "bridge" || l.MTU != 1458 || !slices.Contains(l.Flags, "UP") {
		t.Errorf("kbr0 = %+v", l)
	}
	if l := ls["vkbr0"]; l.Master != "kbr0" || l.MTU != 1458 {
		t.Errorf("vkbr0 = %+v", l)
	}
	// ovs-vswitchd applies the database asynchronously.
	nodetest.WaitFor(t, 10*time.Second, "ovs-vswitchd to create obr0's device", func() bool { _, ok := n.Links()["obr0"]; return ok })
	if out := nodetest.Sh(t, "ip", "-n", n.NS, "-4", "addr", "show", "dev", "kbr0"); !strings.Contains(out, "inet 10.244.1.1/24") {
		t.Errorf("kbr0 address:\n%s", out)
	}
	if out := nodetest.Sh(t, "ip", "-n", n.NS, "route", "show", "10.244.0.0/16"); !strings.Contains(out, "dev kbr0") {
		t.Errorf("cluster route: %q", out)
	}
	if out := nodetest.Sh(t, "ip", "netns", "exec", n.NS, "nft", "list", "table", "ip", "ovsmesh"); !strings.Contains(out, "masquerade") {
		t.Errorf("masquerade table:\n%s", out)
	}
	checkCNI(t, a.CNIConfDir, "kbr0", 1458)

	// Second apply: nothing to do.
	before := n.Links()
	r, err = a.Apply(ctx, s)
	if err != nil || r.Changed() || r.OVSOps != 0 {
		t.Fatalf("second apply: %+v %v; want no change and zero OVSDB operations", r, err)
	}
	if after := n.Links(); !reflect.DeepEqual(before, after) {
		t.Errorf("links changed on the second apply:\n%v\n%v", before, after)
	}

	// Live GRE→VXLAN switch: tunnel ports replaced in one transaction, bridge kept, kbr0's
	// MTU lowered in place.
	spec.Tunnel.Type = v1alpha1.TunnelVXLAN
	spec.Tunnel.Key = ptr(int64(42))
	s = desiredOn(t, n, spec, subnets, "n1", "172.30.0.1")
	if r, err = a.Apply(ctx, s); err != nil {
		t.Fatalf("VXLAN apply: %v", err)
	}
	if got := sortedLines(n.Vsctl("list-ports", "obr0")); !reflect.DeepEqual(got, []string{"vobr0", "vxlan-ac1e0002", "vxlan-ac1e0003"}) {
		t.Errorf("after switch, obr0 ports = %v", got)
	}
	if got := n.Vsctl("get", "Interface", "vxlan-ac1e0002", "type", "options:dst_port", "options:key"); got != "vxlan\n\"4789\"\n\"42\"" {
		t.Errorf("vxlan-ac1e0002:\n%s", got)
	}
	if got := n.Vsctl("get", "Bridge", "obr0", "_uuid"); got != brUUID {
		t.Errorf("obr0 was recreated: uuid %s -> %s", brUUID, got)
	}
	after := n.Links()
	if after["kbr0"].Index != before["kbr0"].Index || after["kbr0"].MTU != 1450 || after["vkbr0"].Index != before["vkbr0"].Index {
		t.Errorf("kbr0/vkbr0 after switch: %+v %+v (were %+v %+v)", after["kbr0"], after["vkbr0"], before["kbr0"], before["vkbr0"])
	}
	checkCNI(t, a.CNIConfDir, "kbr0", 1450)

	// Peers follow the NodeSubnets: n3 torn down, n4 joins.
	subnets[0].Spec.Teardown = true
	subnets = append(subnets, subnet("n4", "10.244.4.0/24", "10.244.4.1", "172.30.0.4"))
	s = desiredOn(t, n, spec, subnets, "n1", "172.30.0.1")
	if r, err = a.Apply(ctx, s); err != nil {
		t.Fatalf("peer change apply: %v", err)
	}
	if got := sortedLines(n.Vsctl("list-ports", "obr0")); !reflect.DeepEqual(got, []string{"vobr0", "vxlan-ac1e0002", "vxlan-ac1e0004"}) {
		t.Errorf("after peer change, obr0 ports = %v", got)
	}
	if len(r.HostChanges) != 0 || r.Tunnels.Count != 2 {
		t.Errorf("peer change: host changes %v, tunnels %+v", r.HostChanges, r.Tunnels)
	}

	// Agent restart: a fresh OVS connection and netlink handle adopt everything.
	before = n.Links()
	a2 := &Applier{Host: n.Host(), OVS: NewOVSSide(n.Dial()), CNIConfDir: a.CNIConfDir, Log: testr.New(t)}
	if r, err = a2.Apply(ctx, s); err != nil || r.Changed() {
		t.Fatalf("apply after agent restart: %+v %v; want no change", r, err)
	}
	if after := n.Links(); !reflect.DeepEqual(before, after) {
		t.Errorf("links changed after agent restart")
	}

	// ovs-vswitchd restart (no --cleanup, as on an upgrade): the veth and its place in
	// kbr0 survive, the database is unchanged, so the reapply is a no-op.
	n.StopVswitchd(false)
	n.StartVswitchd()
	nodetest.WaitFor(t, 10*time.Second, "obr0 device back", func() bool { _, ok := n.Links()["obr0"]; return ok })
	if r, err = a2.Apply(ctx, s); err != nil || r.Changed() {
		t.Fatalf("apply after ovs-vswitchd restart: %+v %v; want no change", r, err)
	}
	if l := n.Links()["vkbr0"]; l.Index != before["vkbr0"].Index || l.Master != "kbr0" {
		t.Errorf("vkbr0 after ovs-vswitchd restart: %+v", l)
	}

	// Cleanup removes everything, and twice is fine.
	if _, err := a2.Cleanup(ctx, TargetForSpec(spec)); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if got := n.Vsctl("list-br"); got != "" {
		t.Errorf("bridges left: %q", got)
	}
	nodetest.WaitFor(t, 10*time.Second, "obr0 device removed by ovs-vswitchd", func() bool { _, ok := n.Links()["obr0"]; return !ok })
	for name := range n.Links() {
		if !slices.Contains([]string{"lo", "eth0", "eth0p", "ovs-netdev"}, name) {
			t.Errorf("link %s left after cleanup", name)
		}
	}
	if out := nodetest.Sh(t, "ip", "netns", "exec", n.NS, "nft", "list", "tables"); strings.TrimSpace(out) != "" {
		t.Errorf("nft tables left: %q", out)
	}
	if out := nodetest.Sh(t, "ip", "-n", n.NS, "route", "show", "10.244.0.0/16"); strings.TrimSpace(out) != "" {
		t.Errorf("route left: %q", out)
	}
	if _, err := os.Stat(filepath.Join(a.CNIConfDir, CNIConfFile)); !os.IsNotExist(err) {
		t.Errorf("CNI config left: %v", err)
	}
	if ch, err := a2.Cleanup(ctx, TargetForSpec(spec)); err != nil || len(ch) != 0 {
		t.Errorf("second cleanup: %v %v", ch, err)
	}
}

func checkCNI(t *testing.T, dir, bridge string, mtu int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, CNIConfFile))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			MTU    int    `json:"mtu"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("CNI config: %v\n%s", err, b)
	}
	if len(conf.Plugins) == 0 || conf.Plugins[0].Type != "ovsmesh" || conf.Plugins[0].Bridge != bridge || conf.Plugins[0].MTU != mtu {
		t.Errorf("CNI config = %s", b)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(matches) != 1 {
		t.Errorf("CNI dir holds %v, want only %s (no temp files)", matches, CNIConfFile)
	}
}
