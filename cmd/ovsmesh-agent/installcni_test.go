package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ovsmesh/ovsmesh/agent"
)

func TestInstallCNI(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "bin")
	for name, body := range map[string]string{"ovsmesh": "new ovsmesh", "host-local": "image host-local", "portmap": "image portmap"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// First install on a node without plugins: everything.
	got, err := installCNI(src, dst)
	if err != nil || !reflect.DeepEqual(got, []string{"host-local", "ovsmesh", "portmap"}) {
		t.Fatalf("first install: %v %v", got, err)
	}
	// The node's own host-local wins; ovsmesh is always replaced.
	if err := os.WriteFile(filepath.Join(dst, "host-local"), []byte("node host-local"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "ovsmesh"), []byte("old ovsmesh"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err = installCNI(src, dst)
	if err != nil || !reflect.DeepEqual(got, []string{"ovsmesh"}) {
		t.Fatalf("second install: %v %v", got, err)
	}
	for name, want := range map[string]string{"ovsmesh": "new ovsmesh", "host-local": "node host-local", "portmap": "image portmap"} {
		b, err := os.ReadFile(filepath.Join(dst, name))
		fi, _ := os.Stat(filepath.Join(dst, name))
		if err != nil || string(b) != want || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %q %v %v, want %q mode 0755", name, b, fi.Mode(), err, want)
		}
	}
	entries, _ := os.ReadDir(dst)
	if len(entries) != 4 {
		t.Errorf("want the three plugins and the record in %s, no temp files: %v", dst, entries)
	}
	// The record is the union of both installs: the first one put all three there.
	rec, _ := os.ReadFile(filepath.Join(dst, agent.InstalledPluginsRecord))
	if string(rec) != "host-local\novsmesh\nportmap\n" {
		t.Errorf("record %q, want host-local, ovsmesh, portmap", rec)
	}
	// An image without the ovsmesh plugin is an error, not a silent no-op.
	if _, err := installCNI(t.TempDir(), dst); err == nil {
		t.Error("empty source dir accepted")
	}
}
