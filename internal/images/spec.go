// Package images builds ovsmesh's container images without a container engine: each image is
// an empty base plus one layer of static binaries, assembled with go-containerregistry and
// written as an OCI image-layout archive that `ctr images import` (or any OCI tool) loads.
// Nothing is pulled, and the same sources give the same digests: every timestamp is the
// epoch, every owner root, every file list sorted, and the binaries are built with
// -trimpath and an empty build id.
//
// The layouts below are the same contract Dockerfile.operator and Dockerfile.agent describe
// for users with a container engine (a test holds the two together); the agent's is the one
// the operator's DaemonSet expects (controllers/agent_resources.go).
package images

// Binary is one static Go binary an image carries.
type Binary struct {
	Name    string // file name under the build directory
	Package string // go build target
}

// Binaries are every binary the images need, built once.
var Binaries = []Binary{
	{Name: "manager", Package: "./cmd/manager"},
	{Name: "ovsmesh-agent", Package: "./cmd/ovsmesh-agent"},
	{Name: "ovsmesh", Package: "./cmd/ovsmesh"},
	// host-local is a `tool` of ovsmesh's go.mod, so it builds at the version go.mod pins.
	{Name: "host-local", Package: "github.com/containernetworking/plugins/plugins/ipam/host-local"},
	{Name: "portmap", Package: "github.com/containernetworking/plugins/plugins/meta/portmap"},
	{Name: "podtool", Package: "./test/podtool"},
}

// File places a built binary at Path in the image.
type File struct {
	Path   string // absolute path in the image
	Binary string // Binary.Name
}

// Spec is one image.
type Spec struct {
	Name       string   // short name: the archive is NAME.tar
	Repository string   // e.g. ghcr.io/ovsmesh/ovsmesh-agent
	Files      []File   // binaries, at their paths
	Entrypoint []string // ENTRYPOINT
	User       string   // USER (uid:gid)
	Dockerfile string   // the Dockerfile describing the same image for container engines, if any
}

// The images. Tags are given when building (Build's tags), so one build can carry several.
const (
	Registry = "ghcr.io/ovsmesh"
	// PauseRef is the sandbox image containerd pins on the test bed's nodes: the test-pod
	// binary with no arguments sleeps until it is signalled, which is all a pause container does.
	PauseRef = "registry.k8s.io/pause:3.10"
)

// Operator is the operator image (config/manager runs /manager as uid 65532).
var Operator = Spec{
	Name: "operator", Repository: Registry + "/ovsmesh-operator",
	Files:      []File{{Path: "/manager", Binary: "manager"}},
	Entrypoint: []string{"/manager"}, User: "65532:65532", Dockerfile: "Dockerfile.operator",
}

// Agent is the node agent image: the agent, the CNI plugin, and the two plugins its conflist
// chains to (host-local for IPAM, portmap for hostPorts) under ovsmesh's own names, which
// install-cni copies to every node (cni/config.HostLocalType, PortmapType).
var Agent = Spec{
	Name: "agent", Repository: Registry + "/ovsmesh-agent",
	Files: []File{
		{Path: "/usr/local/bin/ovsmesh-agent", Binary: "ovsmesh-agent"},
		{Path: "/opt/ovsmesh/cni/bin/ovsmesh", Binary: "ovsmesh"},
		{Path: "/opt/ovsmesh/cni/bin/ovsmesh-host-local", Binary: "host-local"},
		{Path: "/opt/ovsmesh/cni/bin/ovsmesh-portmap", Binary: "portmap"},
	},
	Entrypoint: []string{"/usr/local/bin/ovsmesh-agent"}, User: "0:0", Dockerfile: "Dockerfile.agent",
}

// TestPod is the workload of the real-node tests and the demo: one static binary that pauses,
// serves HTTP, pings and fetches (test/podtool).
var TestPod = Spec{
	Name: "testpod", Repository: Registry + "/ovsmesh-testpod",
	Files:      []File{{Path: "/podtool", Binary: "podtool"}},
	Entrypoint: []string{"/podtool"}, User: "0:0",
}

// All are the images `make images` builds.
var All = []Spec{Operator, Agent, TestPod}
