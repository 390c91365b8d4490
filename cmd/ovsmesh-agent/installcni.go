package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/ovsmesh/ovsmesh/agent"
)

// defaultCNISourceDir is where the agent image ships the CNI plugins (see the image contract
// in controllers/agent_resources.go).
const defaultCNISourceDir = "/opt/ovsmesh/cni/bin"

// installCNI copies every CNI plugin in src into dst for the DaemonSet's init container: all
// of them are ovsmesh's, versioned with the agent (ovsmesh, and upstream host-local and
// portmap under ovsmesh's own names: cni/config.HostLocalType, PortmapType), so a node's own
// plugins are neither used nor touched. Each copy is written to a temp file in dst and
// renamed over the target, so a runtime executing the plugin at that moment sees the old
// binary or the new one, never a partial file. It returns the plugins it installed, and adds
// them to the record in dst (agent.InstalledPluginsRecord) that uninstall removes by.
func installCNI(src, dst string) ([]string, error) {
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("CNI plugins in the image: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if !contains(names, "ovsmesh") {
		return nil, fmt.Errorf("the image has no ovsmesh CNI plugin in %s", src)
	}
	var installed []string
	for _, name := range names {
		if err := copyAtomic(filepath.Join(src, name), filepath.Join(dst, name), 0o755); err != nil {
			return installed, fmt.Errorf("installing %s: %w", name, err)
		}
		installed = append(installed, name)
	}
	// Uninstall removes what the record lists, and only that.
	if err := agent.RecordInstalledPlugins(dst, installed); err != nil {
		return installed, fmt.Errorf("recording the installed plugins: %w", err)
	}
	return installed, nil
}

func copyAtomic(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
