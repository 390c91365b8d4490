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
	for name, body := range map[string]string{"ovsmesh": "new ovsmesh", "ovsmesh-host-local": "image host-local", "ovsmesh-portmap": "image portmap"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The node's own plugins, and an older install that put host-local there.
	for name, body := range map[string]string{"host-local": "node host-local", "portmap": "node portmap", "ovsmesh": "old ovsmesh", "ovsmesh-portmap": "old portmap"} {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := agent.RecordInstalledPlugins(dst, []string{"ovsmesh"}); err != nil {
		t.Fatal(err)
	}
	got, err := installCNI(src, dst)
	if err != nil || !reflect.DeepEqual(got, []string{"ovsmesh", "ovsmesh-host-local", "ovsmesh-portmap"}) {
		t.Fatalf("install: %v %v", got, err)
	}
	// Every plugin of the image replaced or added; the node's own untouched.
	for name, want := range map[string]string{"ovsmesh": "new ovsmesh", "ovsmesh-host-local": "image host-local", "ovsmesh-portmap": "image portmap",
		"host-local": "node host-local", "portmap": "node portmap"} {
		b, err := os.ReadFile(filepath.Join(dst, name))
		fi, _ := os.Stat(filepath.Join(dst, name))
		if err != nil || string(b) != want || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %q %v %v, want %q mode 0755", name, b, fi.Mode(), err, want)
		}
	}
	entries, _ := os.ReadDir(dst)
	if len(entries) != 6 {
		t.Errorf("want five plugins and the record in %s, no temp files: %v", dst, entries)
	}
	// The record is the union with the earlier install's, and never names the node's own.
	rec, _ := os.ReadFile(filepath.Join(dst, agent.InstalledPluginsRecord))
	if string(rec) != "ovsmesh\novsmesh-host-local\novsmesh-portmap\n" {
		t.Errorf("record %q, want ovsmesh, ovsmesh-host-local, ovsmesh-portmap", rec)
	}
	// An image without the ovsmesh plugin is an error, not a silent no-op.
	if _, err := installCNI(t.TempDir(), dst); err == nil {
		t.Error("empty source dir accepted")
	}
}
