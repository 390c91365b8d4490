package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// generatedDirs are the parts of the bundle directory Build owns. Write empties them first,
// so a manifest that config/ no longer renders disappears from the bundle too; anything else
// in the bundle directory (its README) is left alone.
var generatedDirs = []string{"manifests", "metadata", filepath.Join("tests", "scorecard")}

// Write puts b into dir and its Dockerfile at dockerfilePath.
func Write(b *Bundle, dir, dockerfilePath string) error {
	for _, d := range generatedDirs {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(b.Files))
	for n := range b.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b.Files[n], 0o644); err != nil {
			return fmt.Errorf("writing bundle: %w", err)
		}
	}
	return os.WriteFile(dockerfilePath, b.Dockerfile, 0o644)
}
