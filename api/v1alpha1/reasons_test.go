package v1alpha1_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// The README's table of Ready reasons is the users' side of the contract in reasons.go:
// every reason the agent writes has a row, and no row names a reason that does not exist.
func TestReadmeListsEveryReadyReason(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "| reason | meaning | look at |")
	if start < 0 {
		t.Fatal("README has no table of Ready reasons (| reason | meaning | look at |)")
	}
	var documented []string
	cell := regexp.MustCompile("`([A-Za-z]+)`")
	for _, line := range strings.Split(text[start:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break // the table ends at the first line that is not a row
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range cell.FindAllStringSubmatch(first, -1) {
			documented = append(documented, m[1])
		}
	}
	for _, r := range v1alpha1.ReadyReasons {
		if !slices.Contains(documented, r) {
			t.Errorf("reason %s is not in the README's table", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(v1alpha1.ReadyReasons, r) {
			t.Errorf("the README's table names %s, which is not in v1alpha1.ReadyReasons", r)
		}
	}
	if len(documented) != len(v1alpha1.ReadyReasons) {
		t.Errorf("README documents %d reasons %v, the API has %d", len(documented), documented, len(v1alpha1.ReadyReasons))
	}
}
