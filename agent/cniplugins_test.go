package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestRemoveInstalledPlugins: uninstall removes exactly what install-cni recorded, keeps the
// node's own plugins and anything else in the directory, and follows no path in the record.
func TestRemoveInstalledPlugins(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ovsmesh", "portmap", "host-local", "loopback"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(root, "outside")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Two installs (an upgrade): the record is their union.
	if err := RecordInstalledPlugins(dir, []string{"ovsmesh", "portmap"}); err != nil {
		t.Fatal(err)
	}
	if err := RecordInstalledPlugins(dir, []string{"ovsmesh"}); err != nil {
		t.Fatal(err)
	}
	// A hand-edited record naming a path outside the directory.
	f, _ := os.OpenFile(filepath.Join(dir, InstalledPluginsRecord), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("../outside\n")
	f.Close()

	removed, err := removeInstalledPlugins(dir)
	if err != nil || len(removed) != 2 {
		t.Fatalf("removed %v, %v; want ovsmesh and portmap", removed, err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	sort.Strings(left)
	if len(left) != 2 || left[0] != "host-local" || left[1] != "loopback" {
		t.Errorf("left %v, want the node's host-local and loopback (and no record)", left)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a file outside the directory was removed: %v", err)
	}
	// Again, and with no directory configured: nothing to do, no error.
	if removed, err := removeInstalledPlugins(dir); err != nil || len(removed) != 0 {
		t.Errorf("second removal: %v %v", removed, err)
	}
	if removed, err := removeInstalledPlugins(""); err != nil || removed != nil {
		t.Errorf("no directory: %v %v", removed, err)
	}
}

// TestMissingPlugins: the check reads the plugin and IPAM types from the conflist itself and
// wants an executable file for each.
func TestMissingPlugins(t *testing.T) {
	dir := t.TempDir()
	conf, err := renderCNI(cniInput("kbr0", netip.MustParsePrefix("10.244.1.0/24"), netip.MustParseAddr("10.244.1.1"), netip.MustParsePrefix("10.244.0.0/16"), 1450), "")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("ovsmesh", 0o755)
	write("ovsmesh-host-local", 0o644) // not executable
	write("portmap", 0o755)            // the node's own: not the one the conflist names
	got, err := missingPlugins(dir, conf)
	if err != nil || len(got) != 2 || got[0] != "ovsmesh-host-local" || got[1] != "ovsmesh-portmap" {
		t.Fatalf("missing %v, %v; want ovsmesh-host-local (not executable) and ovsmesh-portmap", got, err)
	}
	write("ovsmesh-portmap", 0o755)
	if err := os.Chmod(filepath.Join(dir, "ovsmesh-host-local"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := missingPlugins(dir, conf); err != nil || len(got) != 0 {
		t.Fatalf("missing %v, %v; want none", got, err)
	}
	if _, err := missingPlugins(dir, []byte("not json")); err == nil {
		t.Error("a config that does not parse passed the check")
	}
}
