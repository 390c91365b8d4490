package ovs

import (
	"k8s.io/utils/ptr"

	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// threeNodeShow builds the OVS side of a three-node cluster (one private ovsdb-server
// per node, underlay 172.30.0.1-3, GRE, STP with the API's default timers) the way the
// agent does, and returns `ovs-vsctl show` of each node.
func threeNodeShow(t *testing.T) []string {
	var shows []string
	for n := 1; n <= 3; n++ {
		srv, c := startDB(t)
		ensureBridge(t, c, BridgeSpec{Name: "obr0", DatapathType: DatapathNetdev, Protocol: ProtocolSTP,
			Priority: ptr.To(32768), HelloTime: 2, MaxAge: 20, ForwardDelay: 15})
		var peers []TunnelSpec
		for p := 1; p <= 3; p++ {
			if p != n {
				peers = append(peers, TunnelSpec{PeerName: fmt.Sprintf("node%d", p), RemoteIP: fmt.Sprintf("172.30.0.%d", p), Type: "GRE"})
			}
		}
		// The veth port and the mesh in one transaction, as doc.go shows.
		ops, err := c.EnsurePortOps(testCtx(t), nil, "obr0", "vobr0", PortSystem)
		if err != nil {
			t.Fatal(err)
		}
		ops, res, err := c.SyncTunnelsOps(testCtx(t), ops, "obr0", peers)
		if err == nil {
			err = res.Err()
		}
		commit(t, c, ops, err)
		if res.Added != 2 {
			t.Fatalf("node%d: %+v", n, res)
		}
		shows = append(shows, srv.Vsctl("show"))
	}
	return shows
}

// TestDocShowsRealOutput keeps the `ovs-vsctl show` examples in doc.go true: they must be
// what the three-node setup above produces (apart from the root row's UUID and the order
// of ports).
func TestDocShowsRealOutput(t *testing.T) {
	shows := threeNodeShow(t)
	for i, s := range shows {
		t.Logf("node%d: ovs-vsctl show\n%s", i+1, s)
		if !strings.Contains(s, fmt.Sprintf("Port gre-ac1e000%d", (i+1)%3+1)) {
			t.Errorf("node%d has no tunnel to node%d", i+1, (i+1)%3+1)
		}
	}
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for i, show := range shows {
		marker := fmt.Sprintf("`ovs-vsctl show` on node%d:", i+1)
		doc := docBlock(string(src), marker)
		if doc == "" {
			t.Errorf("doc.go has no ovs-vsctl show block after %q", marker)
			continue
		}
		if got, want := normalizeShow(doc), normalizeShow(show); got != want {
			t.Errorf("doc.go's ovs-vsctl show example for node%d is out of date; paste this:\n%s", i+1, show)
		}
	}
}

// normalizeShow drops the root row's UUID (the first line) and sorts the port blocks:
// ovs-vsctl show lists ports in hash order, which differs from run to run.
func normalizeShow(s string) string {
	var head []string
	var ports []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n")[1:] {
		switch {
		case strings.HasPrefix(l, "        Port "):
			ports = append(ports, l)
		case len(ports) > 0 && strings.HasPrefix(l, "         "):
			ports[len(ports)-1] += "\n" + l
		default:
			head = append(head, l)
		}
	}
	slices.Sort(ports)
	return strings.Join(append(head, ports...), "\n")
}

// docBlock returns the tab-indented comment block that follows the line containing
// marker, with the comment markers removed.
func docBlock(src, marker string) string {
	var b strings.Builder
	found := false
	for _, l := range strings.Split(src, "\n") {
		if !found {
			found = strings.Contains(l, marker)
			continue
		}
		if l == "//" && b.Len() == 0 {
			continue
		}
		rest, ok := strings.CutPrefix(l, "//\t")
		if !ok {
			break
		}
		b.WriteString(rest + "\n")
	}
	return b.String()
}
