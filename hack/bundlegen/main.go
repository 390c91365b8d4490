// Command bundlegen generates the OLM bundle (bundle/ and bundle.Dockerfile) from the
// kustomize tree config/manifests, as `operator-sdk generate bundle` would; operator-sdk
// cannot be installed on the build machine, so this is a small generator on the
// operator-framework/api types. `make bundle` runs it:
//
//	go run ./hack/bundlegen [-config config/manifests] [-out bundle] [-dockerfile bundle.Dockerfile]
//
// It reads whatever config/ holds at run time (the CRDs, the RBAC generated from the
// controllers' markers, the manager Deployment, the samples), so the bundle follows config/
// and a test (TestBundleIsUpToDate) fails when the committed bundle does not.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// The bundle's channel. "alpha" matches the CSV's maturity; see bundle/README.md for the
// good-practices warning about channel names.
const (
	defaultChannels       = "alpha"
	defaultDefaultChannel = "alpha"
)

// Inputs are everything a generation reads, besides config/manifests itself.
type Inputs struct {
	ConfigDir   string // the kustomization to render (config/manifests)
	IconFile    string // SVG icon for the CSV
	ProjectFile string // kubebuilder PROJECT file, for the layout annotation
	Channels    string // comma-separated
	Default     string // default channel
	BundleDir   string // bundle directory relative to the image build context
}

// DefaultInputs are the inputs `make bundle` uses, for the repository at root.
func DefaultInputs(root string) Inputs {
	return Inputs{
		ConfigDir:   filepath.Join(root, "config", "manifests"),
		IconFile:    filepath.Join(root, "config", "manifests", "bases", "icon.svg"),
		ProjectFile: filepath.Join(root, "PROJECT"),
		Channels:    defaultChannels,
		Default:     defaultDefaultChannel,
		BundleDir:   "bundle",
	}
}

// Generate renders in.ConfigDir and builds the bundle.
func Generate(in Inputs) (*Bundle, error) {
	objs, err := Render(in.ConfigDir)
	if err != nil {
		return nil, err
	}
	icon, err := os.ReadFile(in.IconFile)
	if err != nil {
		return nil, err
	}
	layout, err := projectLayout(in.ProjectFile)
	if err != nil {
		return nil, err
	}
	return Build(objs, Options{
		Channels:       strings.Split(in.Channels, ","),
		DefaultChannel: in.Default,
		Icon:           icon,
		BundleDir:      in.BundleDir,
		ProjectLayout:  layout,
	})
}

// projectLayout reads the first layout of a kubebuilder PROJECT file ("go.kubebuilder.io/v4").
func projectLayout(file string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var p struct {
		Layout []string `json:"layout"`
	}
	if err := yaml.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if len(p.Layout) == 0 {
		return "", nil
	}
	return p.Layout[0], nil
}

func main() {
	in := DefaultInputs(".")
	out, dockerfilePath := "bundle", "bundle.Dockerfile"
	flag.StringVar(&in.ConfigDir, "config", in.ConfigDir, "kustomization to render")
	flag.StringVar(&in.IconFile, "icon", in.IconFile, "SVG icon of the CSV")
	flag.StringVar(&in.ProjectFile, "project", in.ProjectFile, "kubebuilder PROJECT file")
	flag.StringVar(&in.Channels, "channels", in.Channels, "comma-separated channels of the bundle")
	flag.StringVar(&in.Default, "default-channel", in.Default, "default channel of the package")
	flag.StringVar(&out, "out", out, "bundle directory to write")
	flag.StringVar(&dockerfilePath, "dockerfile", dockerfilePath, "bundle.Dockerfile to write")
	flag.Parse()
	in.BundleDir = filepath.ToSlash(filepath.Clean(out))

	b, err := Generate(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
	if err := Write(b, out, dockerfilePath); err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
	for _, n := range b.Notes {
		fmt.Fprintln(os.Stderr, "bundlegen: note:", n)
	}
	fmt.Printf("bundlegen: wrote %d files to %s and %s\n", len(b.Files), out, dockerfilePath)
}
