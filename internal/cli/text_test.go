package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

func testReport() StatusReport {
	return BuildStatus(StatusInput{Cluster: cluster(), LeasesRead: true, Subnets: []v1alpha1.NodeSubnet{
		subnet("node-a", 0, v1alpha1.ReasonApplied, down("node-b")), subnet("node-b", 1, v1alpha1.ReasonApplied), subnet("node-c", 2, v1alpha1.ReasonOVSUnavailable)}}, t0)
}

func TestUseColor(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var buf bytes.Buffer
	if UseColor(ColorAuto, &buf, env(nil)) {
		t.Error("colour into a buffer")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if UseColor(ColorAuto, f, env(nil)) {
		t.Error("colour into a file")
	}
	if !UseColor(ColorAlways, &buf, env(map[string]string{"NO_COLOR": "1"})) || UseColor(ColorNever, f, env(nil)) {
		t.Error("--color always/never not obeyed")
	}
	// A terminal, if the test has one: NO_COLOR still wins.
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !UseColor(ColorAuto, tty, env(nil)) || UseColor(ColorAuto, tty, env(map[string]string{"NO_COLOR": "1"})) {
			t.Error("terminal: colour not on, or NO_COLOR ignored")
		}
	}
}

func TestWriteStatusText(t *testing.T) {
	var plain, colour bytes.Buffer
	WriteStatus(&plain, testReport(), false, t0)
	WriteStatus(&colour, testReport(), true, t0)
	out := plain.String()
	t.Logf("\n%s", out)
	if strings.Contains(out, "\x1b[") {
		t.Error("escape codes without colour")
	}
	if !strings.Contains(colour.String(), "\x1b[31mDown\x1b[0m") {
		t.Error("no red Down with colour")
	}
	for _, want := range []string{
		"NetworkCluster default: GRE tunnels, STP, cluster CIDR 10.244.0.0/16, MTU automatic",
		"nodes ready 2/3, subnets 3 used, 253 free",
		"Degraded  True  NodesNotReady  -  node-c: OVSUnavailable",
		"node-c  192.168.1.12  False  OVSUnavailable  1458",
		"          node-a  node-b  node-c",
		"  node-a  —       Down    ok",
		"  node-c  ?       ?       —",
		"6 tunnels: 3 ok, 1 not ok, 2 unknown",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	// Columns line up with colour on too: stripping the codes gives the plain text.
	stripped := strings.NewReplacer("\x1b[31m", "", "\x1b[32m", "", "\x1b[33m", "", "\x1b[2m", "", "\x1b[0m", "").Replace(colour.String())
	if stripped != out {
		t.Errorf("coloured text differs from plain once stripped:\n%s", stripped)
	}
}

// The JSON document's top-level keys are an interface: this pins them.
func TestStatusJSONShape(t *testing.T) {
	b, err := json.Marshal(testReport())
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if got := keys(top); !reflect.DeepEqual(got, []string{"cluster", "matrix", "nodes", "unreadable"}) {
		t.Errorf("top-level keys %v", got)
	}
	var r struct {
		Nodes  []map[string]json.RawMessage `json:"nodes"`
		Matrix struct {
			Nodes []string   `json:"nodes"`
			Cells [][]string `json:"cells"`
		} `json:"matrix"`
		Unreadable []string `json:"unreadable"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	wantNode := []string{"cidr", "heartbeat", "message", "mtu", "name", "nodeIP", "nodeIPConflict", "peersKnown", "ready", "reason", "tunnelCount", "tunnels", "unhealthyPeers"}
	if got := keys(r.Nodes[0]); !reflect.DeepEqual(got, wantNode) {
		t.Errorf("node keys %v", got)
	}
	if r.Matrix.Cells[0][1] != "Down" || r.Matrix.Cells[0][0] != "self" || r.Unreadable == nil {
		t.Errorf("matrix %+v unreadable %v", r.Matrix, r.Unreadable)
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
