package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
	"github.com/ovsmesh/ovsmesh/internal/testenv"
)

// These tests run against a real kube-apiserver + etcd: defaulting and validation are done by
// the API server from the generated CRDs, exactly as on a real cluster.

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		println(err.Error())
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// obj builds an unstructured object from YAML so that invalid values the Go types cannot
// express (a string where an int belongs, unknown enum values) reach the API server as is.
func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	return u
}

func deleteNow(t *testing.T, o client.Object) {
	t.Helper()
	if err := env.Client.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("cleanup delete %s: %v", o.GetName(), err)
	}
}

func TestSampleIsAcceptedAndDefaulted(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "network_v1alpha1_networkcluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sample := obj(t, string(raw))
	if err := env.Client.Create(ctx(t), sample); err != nil {
		t.Fatalf("sample rejected: %v", err)
	}
	defer deleteNow(t, sample)

	var got v1alpha1.NetworkCluster
	if err := env.Client.Get(ctx(t), client.ObjectKey{Name: "default"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.ClusterCIDR != "10.244.0.0/16" || got.Spec.Tunnel.Type != v1alpha1.TunnelGRE {
		t.Errorf("sample not stored as written: %+v", got.Spec)
	}
}

func TestEmptySpecGetsDocumentedDefaults(t *testing.T) {
	nc := obj(t, "apiVersion: network.ovsmesh.io/v1alpha1\nkind: NetworkCluster\nmetadata: {name: default}\n")
	if err := env.Client.Create(ctx(t), nc); err != nil {
		t.Fatalf("empty NetworkCluster rejected: %v", err)
	}
	defer deleteNow(t, nc)
	var got v1alpha1.NetworkCluster
	if err := env.Client.Get(ctx(t), client.ObjectKey{Name: "default"}, &got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	checks := []struct {
		field     string
		got, want any
	}{
		{"clusterCIDR", s.ClusterCIDR, "10.244.0.0/16"},
		{"nodeSubnetPrefixLength", s.NodeSubnetPrefixLength, int32(24)},
		{"tunnel.type", s.Tunnel.Type, v1alpha1.TunnelGRE},
		{"tunnel.vxlanPort", s.Tunnel.VXLANPort, int32(4789)},
		{"loopPrevention.protocol", s.LoopPrevention.Protocol, v1alpha1.ProtocolSTP},
		{"loopPrevention.priority", s.LoopPrevention.Priority, int32(32768)},
		{"loopPrevention.helloTime", s.LoopPrevention.HelloTime, int32(2)},
		{"loopPrevention.maxAge", s.LoopPrevention.MaxAge, int32(20)},
		{"loopPrevention.forwardDelay", s.LoopPrevention.ForwardDelay, int32(15)},
		{"bridges.ovs", s.Bridges.OVS, "obr0"},
		{"bridges.linux", s.Bridges.Linux, "kbr0"},
		{"mtu", s.MTU, int32(0)},
		{"masquerade", s.Masquerade != nil && *s.Masquerade, true},
		{"datapathType", s.DatapathType, v1alpha1.DatapathSystem},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default of %s = %v, want %v", c.field, c.got, c.want)
		}
	}

	// The accessors of a spec that never met the API server give what it fills in, and
	// those of the defaulted spec the same: Go code has one place for the defaults.
	var empty v1alpha1.NetworkClusterSpec
	for _, spec := range []*v1alpha1.NetworkClusterSpec{&empty, &s} {
		effective := []struct {
			field     string
			got, want any
		}{
			{"clusterCIDR", spec.ClusterCIDROf(), s.ClusterCIDR},
			{"nodeSubnetPrefixLength", spec.NodeSubnetPrefixLengthOf(), int(s.NodeSubnetPrefixLength)},
			{"tunnel.type", spec.Tunnel.TypeOf(), s.Tunnel.Type},
			{"tunnel.vxlanPort", spec.Tunnel.VXLANPortOf(), int(s.Tunnel.VXLANPort)},
			{"loopPrevention.protocol", spec.LoopPrevention.ProtocolOf(), s.LoopPrevention.Protocol},
			{"loopPrevention.helloTime", spec.LoopPrevention.HelloTimeOf(), int(s.LoopPrevention.HelloTime)},
			{"loopPrevention.maxAge", spec.LoopPrevention.MaxAgeOf(), int(s.LoopPrevention.MaxAge)},
			{"loopPrevention.forwardDelay", spec.LoopPrevention.ForwardDelayOf(), int(s.LoopPrevention.ForwardDelay)},
			{"bridges.ovs", spec.Bridges.OVSOf(), s.Bridges.OVS},
			{"bridges.linux", spec.Bridges.LinuxOf(), s.Bridges.Linux},
			{"masquerade", spec.MasqueradeEnabled(), *s.Masquerade},
			{"datapathType", spec.DatapathTypeOf(), s.DatapathType},
			{"agentImage", spec.AgentImageOf(), s.AgentImage},
		}
		for _, c := range effective {
			if c.got != c.want {
				t.Errorf("effective %s of %+v = %v, the API server's default is %v", c.field, *spec, c.got, c.want)
			}
		}
	}
	// Priority has no effective default in Go (0 is a valid priority): the constant is the
	// API server's.
	if s.LoopPrevention.Priority != v1alpha1.DefaultPriority {
		t.Errorf("loopPrevention.priority default %d, v1alpha1.DefaultPriority %d", s.LoopPrevention.Priority, v1alpha1.DefaultPriority)
	}
}

const ncHead = "apiVersion: network.ovsmesh.io/v1alpha1\nkind: NetworkCluster\nmetadata: {name: default}\n"
const nsHead = "apiVersion: network.ovsmesh.io/v1alpha1\nkind: NodeSubnet\nmetadata: {name: node-a}\n"

func TestInvalidObjectsAreRejectedWithAClearMessage(t *testing.T) {
	cases := []struct {
		name, yaml string
		// every substring must appear in the API server's message: the field and the rule.
		want []string
	}{
		{"prefix 33", ncHead + "spec: {clusterCIDR: 10.244.0.0/33}", []string{"spec.clusterCIDR", "IPv4 CIDR"}},
		{"not a CIDR", ncHead + "spec: {clusterCIDR: not-a-cidr}", []string{"spec.clusterCIDR", "IPv4 CIDR such as 10.244.0.0/16"}},
		{"IPv6", ncHead + "spec: {clusterCIDR: 'fd00::/48'}", []string{"spec.clusterCIDR", "must be IPv4"}},
		{"host bits", ncHead + "spec: {clusterCIDR: 10.244.1.0/16}", []string{"spec.clusterCIDR", "no host bits"}},
		{"node prefix 8 under /16", ncHead + "spec: {nodeSubnetPrefixLength: 8}", []string{"spec", "nodeSubnetPrefixLength must be longer than the prefix of clusterCIDR"}},
		{"node prefix 31", ncHead + "spec: {nodeSubnetPrefixLength: 31}", []string{"spec.nodeSubnetPrefixLength", "less than or equal to 30"}},
		{"tunnel STT", ncHead + "spec: {tunnel: {type: STT}}", []string{"spec.tunnel.type", `supported values: "GRE", "VXLAN"`}},
		{"vxlan port 0", ncHead + "spec: {tunnel: {type: VXLAN, vxlanPort: 0}}", []string{"spec.tunnel.vxlanPort", "greater than or equal to 1"}},
		{"vxlan port 70000", ncHead + "spec: {tunnel: {vxlanPort: 70000}}", []string{"spec.tunnel.vxlanPort", "less than or equal to 65535"}},
		{"vxlan key 2^24", ncHead + "spec: {tunnel: {type: VXLAN, key: 16777216}}", []string{"spec.tunnel", "24 bits"}},
		{"gre key 2^32", ncHead + "spec: {tunnel: {key: 4294967296}}", []string{"spec.tunnel.key", "less than or equal to 4294967295"}},
		{"mtu 100", ncHead + "spec: {mtu: 100}", []string{"spec.mtu", "0 (automatic) or between 576 and 9000"}},
		{"mtu 9001", ncHead + "spec: {mtu: 9001}", []string{"spec.mtu", "between 576 and 9000"}},
		{"stp hello 11", ncHead + "spec: {loopPrevention: {helloTime: 11}}", []string{"spec.loopPrevention.helloTime", "less than or equal to 10"}},
		{"stp max age vs forward delay", ncHead + "spec: {loopPrevention: {forwardDelay: 4, maxAge: 20}}", []string{"spec.loopPrevention", "maxAge must be at most 2*(forwardDelay-1)"}},
		{"rstp priority", ncHead + "spec: {loopPrevention: {protocol: RSTP, priority: 100}}", []string{"spec.loopPrevention", "multiple of 4096"}},
		{"loop protocol", ncHead + "spec: {loopPrevention: {protocol: MSTP}}", []string{"spec.loopPrevention.protocol", "supported values"}},
		{"bridge name too long", ncHead + "spec: {bridges: {ovs: a-very-long-bridge-name}}", []string{"spec.bridges.ovs", "should match"}},
		{"same bridge names", ncHead + "spec: {bridges: {ovs: br0, linux: br0}}", []string{"spec", "must be different names"}},
		{"datapath", ncHead + "spec: {datapathType: dpdk}", []string{"spec.datapathType", `supported values: "system", "netdev"`}},
		{"second NetworkCluster", "apiVersion: network.ovsmesh.io/v1alpha1\nkind: NetworkCluster\nmetadata: {name: other}\nspec: {}", []string{"must be named 'default'"}},
		{"NodeSubnet named unlike its node", nsHead + "spec: {nodeName: node-b, cidr: 10.244.1.0/24, gateway: 10.244.1.1, nodeIP: 192.168.0.2}", []string{"metadata.name must equal spec.nodeName"}},
		{"NodeSubnet gateway outside", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0/24, gateway: 10.244.2.1, nodeIP: 192.168.0.2}", []string{"spec", "gateway must be an address inside cidr"}},
		{"NodeSubnet bad node IP", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0/24, gateway: 10.244.1.1, nodeIP: node-a.local}", []string{"spec.nodeIP", "IPv4 address"}},
		{"NodeSubnet bad cidr", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0, gateway: 10.244.1.1, nodeIP: 192.168.0.2}", []string{"spec.cidr", "IPv4 CIDR"}},
		{"cluster CIDR 0.0.0.0/0", ncHead + "spec: {clusterCIDR: 0.0.0.0/0}", []string{"spec.clusterCIDR", "must be a /8 or longer"}},
		{"cluster CIDR 0.0.0.0/8", ncHead + "spec: {clusterCIDR: 0.0.0.0/8, nodeSubnetPrefixLength: 24}", []string{"spec.clusterCIDR", "0.0.0.0/8"}},
		{"cluster CIDR loopback", ncHead + "spec: {clusterCIDR: 127.0.0.0/16}", []string{"spec.clusterCIDR", "loopback"}},
		{"cluster CIDR link-local", ncHead + "spec: {clusterCIDR: 169.254.0.0/16}", []string{"spec.clusterCIDR", "link-local"}},
		{"cluster CIDR multicast", ncHead + "spec: {clusterCIDR: 239.1.0.0/16}", []string{"spec.clusterCIDR", "multicast"}},
		{"cluster CIDR reserved", ncHead + "spec: {clusterCIDR: 250.0.0.0/16}", []string{"spec.clusterCIDR", "reserved"}},
		{"bridge named all", ncHead + "spec: {bridges: {ovs: all}}", []string{"spec.bridges.ovs", "may not be"}},
		{"bridge named lo", ncHead + "spec: {bridges: {linux: lo}}", []string{"spec.bridges.linux", "may not be"}},
		{"bridge named ..", ncHead + "spec: {bridges: {linux: '..'}}", []string{"spec.bridges.linux", "may not be"}},
		{"bridge named ovs-system", ncHead + "spec: {bridges: {ovs: ovs-system}}", []string{"spec.bridges.ovs", "may not be"}},
		{"linux bridge named like the OVS veth", ncHead + "spec: {bridges: {ovs: obr0, linux: vobr0}}", []string{"spec.bridges", "veth pair"}},
		{"OVS bridge named like the Linux veth", ncHead + "spec: {bridges: {ovs: vkbr0, linux: kbr0}}", []string{"spec.bridges", "veth pair"}},
		{"NodeSubnet node IP 0.0.0.0", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0/24, gateway: 10.244.1.1, nodeIP: 0.0.0.0}", []string{"spec.nodeIP", "unicast address a tunnel can reach"}},
		{"NodeSubnet node IP loopback", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0/24, gateway: 10.244.1.1, nodeIP: 127.0.0.1}", []string{"spec.nodeIP", "loopback"}},
		{"NodeSubnet node IP multicast", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0/24, gateway: 10.244.1.1, nodeIP: 224.0.0.5}", []string{"spec.nodeIP", "multicast"}},
		{"NodeSubnet node IP broadcast", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0/24, gateway: 10.244.1.1, nodeIP: 255.255.255.255}", []string{"spec.nodeIP", "broadcast"}},
		{"NodeSubnet gateway is the network", nsHead + "spec: {nodeName: node-a, cidr: 10.244.1.0/24, gateway: 10.244.1.0, nodeIP: 192.168.0.2}", []string{"spec", "gateway must not be the network address"}},
		{"NodeSubnet missing nodeName", nsHead + "spec: {cidr: 10.244.1.0/24, gateway: 10.244.1.1, nodeIP: 192.168.0.2}", []string{"spec.nodeName", "Required value"}},
	}
	if len(cases) < 12 {
		t.Fatalf("the table must hold at least 12 cases, has %d", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := obj(t, c.yaml)
			err := env.Client.Create(ctx(t), o)
			if err == nil {
				deleteNow(t, o)
				t.Fatalf("accepted, want rejection mentioning %q", c.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid (422) error, got %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not mention %q", err.Error(), w)
				}
			}
		})
	}
}

func TestImmutableFields(t *testing.T) {
	nc := obj(t, ncHead+"spec: {}")
	if err := env.Client.Create(ctx(t), nc); err != nil {
		t.Fatal(err)
	}
	defer deleteNow(t, nc)

	for _, c := range []struct{ field, value, want string }{
		{"clusterCIDR", "10.245.0.0/16", "clusterCIDR is immutable"},
		{"nodeSubnetPrefixLength", "25", "nodeSubnetPrefixLength is immutable"},
		{"bridges", `{"ovs":"obr1"}`, "bridges.ovs is immutable: a rename would cut the pods off; delete the NetworkCluster"},
		{"bridges", `{"linux":"kbr1"}`, "bridges.linux is immutable"},
	} {
		var cur v1alpha1.NetworkCluster
		if err := env.Client.Get(ctx(t), client.ObjectKey{Name: "default"}, &cur); err != nil {
			t.Fatal(err)
		}
		patch := []byte(`{"spec":{"` + c.field + `":` + map[bool]string{true: c.value, false: `"` + c.value + `"`}[c.field != "clusterCIDR"] + `}}`)
		err := env.Client.Patch(ctx(t), &cur, client.RawPatch("application/merge-patch+json", patch))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("changing %s: got %v, want an error containing %q", c.field, err, c.want)
		}
	}
	// The tunnel type, by contrast, may change on a live cluster.
	var cur v1alpha1.NetworkCluster
	if err := env.Client.Get(ctx(t), client.ObjectKey{Name: "default"}, &cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.Tunnel.Type = v1alpha1.TunnelVXLAN
	if err := env.Client.Update(ctx(t), &cur); err != nil {
		t.Errorf("live tunnel type change rejected: %v", err)
	}
}

func TestNodeSubnetAcceptedAndImmutable(t *testing.T) {
	ns := &v1alpha1.NodeSubnet{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
		Spec:       v1alpha1.NodeSubnetSpec{NodeName: "node-a", CIDR: "10.244.1.0/24", Gateway: "10.244.1.1", NodeIP: "192.168.0.2"},
	}
	if err := env.Client.Create(ctx(t), ns); err != nil {
		t.Fatalf("valid NodeSubnet rejected: %v", err)
	}
	defer deleteNow(t, ns)
	ns.Spec.CIDR = "10.244.2.0/24"
	ns.Spec.Gateway = "10.244.2.1"
	if err := env.Client.Update(ctx(t), ns); err == nil || !strings.Contains(err.Error(), "cidr is immutable") {
		t.Errorf("changing cidr: got %v, want 'cidr is immutable'", err)
	}
}

func TestPrinterColumnsAndShortNames(t *testing.T) {
	want := map[string][]string{
		"networkclusters.network.ovsmesh.io": {"Tunnel", "Cluster CIDR", "Ready", "Nodes", "Available", "Age"},
		"nodesubnets.network.ovsmesh.io":     {"Node", "CIDR", "Node IP", "Ready", "Tunnels", "Forwarding", "Age"},
	}
	short := map[string]string{"networkclusters.network.ovsmesh.io": "ncl", "nodesubnets.network.ovsmesh.io": "nsub"}
	for name, cols := range want {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := env.Client.Get(ctx(t), client.ObjectKey{Name: name}, &crd); err != nil {
			t.Fatal(err)
		}
		if crd.Spec.Scope != apiextensionsv1.ClusterScoped {
			t.Errorf("%s scope %s, want Cluster", name, crd.Spec.Scope)
		}
		var got []string
		for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			got = append(got, c.Name)
		}
		if strings.Join(got, ",") != strings.Join(cols, ",") {
			t.Errorf("%s printer columns %v, want %v", name, got, cols)
		}
		if crd.Spec.Versions[0].Subresources == nil || crd.Spec.Versions[0].Subresources.Status == nil {
			t.Errorf("%s has no status subresource", name)
		}
		if len(crd.Spec.Names.ShortNames) != 1 || crd.Spec.Names.ShortNames[0] != short[name] {
			t.Errorf("%s short names %v, want [%s]", name, crd.Spec.Names.ShortNames, short[name])
		}
	}
}
