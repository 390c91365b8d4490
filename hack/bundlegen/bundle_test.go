package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// TestBundleIsUpToDate regenerates the bundle from config/ into a temporary directory and
// compares it, file by file, with the committed bundle/ and bundle.Dockerfile. It fails when
// someone changed config/ (CRDs, RBAC markers, the manager Deployment, samples, the CSV base)
// without running `make bundle`.
func TestBundleIsUpToDate(t *testing.T) {
	root := repoRoot(t)
	b, err := Generate(DefaultInputs(root))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := Write(b, filepath.Join(tmp, "bundle"), filepath.Join(tmp, "bundle.Dockerfile")); err != nil {
		t.Fatal(err)
	}
	want := generatedFiles(t, filepath.Join(tmp, "bundle"))
	got := generatedFiles(t, filepath.Join(root, "bundle"))
	want["../bundle.Dockerfile"] = readFile(t, filepath.Join(tmp, "bundle.Dockerfile"))
	got["../bundle.Dockerfile"] = readFile(t, filepath.Join(root, "bundle.Dockerfile"))
	var stale []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			stale = append(stale, "missing: bundle/"+name)
		case !bytes.Equal(g, w):
			stale = append(stale, "differs: bundle/"+name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			stale = append(stale, "not generated any more: bundle/"+name)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("bundle/ is stale relative to config/; run `make bundle` and commit:\n  %s", strings.Join(stale, "\n  "))
	}
	if len(want) < 5 {
		t.Errorf("generated only %d files, want at least the CSV, two CRDs, annotations.yaml, scorecard config and bundle.Dockerfile", len(want))
	}
}

// generatedFiles reads the parts of a bundle directory the generator owns.
func generatedFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, d := range generatedDirs {
		err := filepath.WalkDir(filepath.Join(dir, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files[filepath.ToSlash(rel)] = readFile(t, p)
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return files
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// expectedWarnings are the validator warnings the committed bundle is known to produce, each
// with the reason it stays (bundle/README.md says the same). A new warning fails the test:
// fix it, or add it here and to the README with its reason.
var expectedWarnings = map[string]string{
	// GoodPracticesValidator: OLM recommends channel names starting with candidate, fast or
	// stable. The project's single channel is "alpha", matching the CSV's maturity: the API
	// is v1alpha1 and may change incompatibly, which none of the recommended names promises.
	`channel(s) ["alpha"] are not following the recommended naming convention: https://olm.operatorframework.io/docs/best-practices/channel-naming`: "channel",
	// OperatorHubValidator (asked for by the issue) is deprecated upstream in favour of
	// OperatorHubV2Validator + StandardCapabilitiesValidator + StandardCategoriesValidator; it
	// always says so. The test runs those three as well, and they pass with no warning.
	`The "operatorhub" validator is deprecated; for equivalent validation use "operatorhub/v2", "standardcapabilities" and "standardcategories" validators`: "deprecated validator",
	// CSVValidator: NodeSubnet has no example on purpose. NodeSubnets are the operator's IPAM
	// records, one per node, written by the operator and the agents; an example would invite
	// people to create one by hand. The CSV marks them operators.operatorframework.io/internal-objects.
	`provided API should have an example annotation`: "NodeSubnet example",
}

// TestBundlePassesValidators loads the committed bundle/ with operator-framework/api's own
// loader and runs the default bundle validators (CSV, CRD, bundle), the OperatorHub and good
// practices validators, and the OperatorHub v2 / capabilities / categories validators that
// replace the deprecated OperatorHub one. No error is allowed; warnings must be the known,
// explained ones.
func TestBundlePassesValidators(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir(filepath.Join(repoRoot(t), "bundle"))
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	if bundle.CSV == nil || bundle.CSV.Name != "ovsmesh.v0.1.0" {
		t.Fatalf("bundle/ has no CSV ovsmesh.v0.1.0")
	}
	if bundle.Package != "ovsmesh" || bundle.DefaultChannel != "alpha" {
		t.Errorf("package %q default channel %q, want ovsmesh / alpha", bundle.Package, bundle.DefaultChannel)
	}
	if len(bundle.V1CRDs) != 2 {
		t.Errorf("bundle has %d v1 CRDs, want 2", len(bundle.V1CRDs))
	}
	validators := append(interfaces.Validators{}, validation.DefaultBundleValidators...)
	validators = append(validators,
		validation.OperatorHubValidator,
		validation.GoodPracticesValidator,
		validation.OperatorHubV2Validator,
		validation.StandardCapabilitiesValidator,
		validation.StandardCategoriesValidator,
	)
	results := validators.Validate(bundle.ObjectsToValidate()...)
	if len(results) < len(validators) {
		t.Fatalf("%d validator results for %d validators: some validator saw nothing to validate", len(results), len(validators))
	}
	seen := map[string]bool{}
	for _, r := range results {
		for _, e := range r.Errors {
			t.Errorf("validation error (%s): %s", r.Name, e)
		}
		for _, w := range r.Warnings {
			if reason := knownWarning(w); reason != "" {
				seen[reason] = true
				t.Logf("known warning (%s): %s", reason, w.Detail)
				continue
			}
			t.Errorf("unexplained validation warning (%s): %s — fix it, or explain it in expectedWarnings and bundle/README.md", r.Name, w)
		}
	}
	for _, reason := range expectedWarnings {
		if !seen[reason] {
			t.Errorf("expected warning %q did not occur: remove it from expectedWarnings and bundle/README.md", reason)
		}
	}
}

func knownWarning(w errors.Error) string {
	for text, reason := range expectedWarnings {
		if strings.Contains(w.Error(), text) {
			return reason
		}
	}
	return ""
}
