package main

import (
	"fmt"
	"path"
	"strings"
)

// label is one bundle metadata key. The same list is written twice, as
// metadata/annotations.yaml (read by OLM from the unpacked bundle) and as the LABELs of
// bundle.Dockerfile (read by opm from the image), so the two can never disagree.
type label struct{ key, value, section string }

func metadataLabels(pkg string, opts Options) []label {
	const core, test = "Core bundle annotations.", "Annotations for testing."
	l := []label{
		{"operators.operatorframework.io.bundle.mediatype.v1", "registry+v1", core},
		{"operators.operatorframework.io.bundle.manifests.v1", "manifests/", core},
		{"operators.operatorframework.io.bundle.metadata.v1", "metadata/", core},
		{"operators.operatorframework.io.bundle.package.v1", pkg, core},
		{"operators.operatorframework.io.bundle.channels.v1", strings.Join(opts.Channels, ","), core},
		{"operators.operatorframework.io.bundle.channel.default.v1", opts.DefaultChannel, core},
		{"operators.operatorframework.io.metrics.builder", Builder, core},
		{"operators.operatorframework.io.metrics.mediatype.v1", "metrics+v1", core},
	}
	if opts.ProjectLayout != "" {
		l = append(l, label{"operators.operatorframework.io.metrics.project_layout", opts.ProjectLayout, core})
	}
	return append(l,
		label{"operators.operatorframework.io.test.mediatype.v1", "scorecard+v1", test},
		label{"operators.operatorframework.io.test.config.v1", "tests/scorecard/", test},
	)
}

func annotationsYAML(labels []label) []byte {
	var b strings.Builder
	b.WriteString(generatedHeader)
	b.WriteString("annotations:\n")
	section := ""
	for _, l := range labels {
		if l.section != section {
			section = l.section
			fmt.Fprintf(&b, "  # %s\n", section)
		}
		fmt.Fprintf(&b, "  %s: %s\n", l.key, l.value)
	}
	return []byte(b.String())
}

// dockerfile packs the bundle directory (bundleDir, relative to the build context) into a
// bundle image: `docker build -f bundle.Dockerfile .` from the repository root.
func dockerfile(labels []label, bundleDir string) []byte {
	var b strings.Builder
	b.WriteString(generatedHeader)
	b.WriteString("# The OLM bundle image: make bundle-build (needs a container engine).\nFROM scratch\n")
	section := ""
	for _, l := range labels {
		if l.section != section {
			section = l.section
			fmt.Fprintf(&b, "\n# %s\n", section)
		}
		fmt.Fprintf(&b, "LABEL %s=%s\n", l.key, l.value)
	}
	b.WriteString("\n# Copy files to locations specified by labels.\n")
	for _, d := range []string{"manifests", "metadata", "tests/scorecard"} {
		fmt.Fprintf(&b, "COPY %s /%s/\n", path.Join(bundleDir, d), d)
	}
	return []byte(b.String())
}
