package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// InstalledPluginsRecord is the file, in the node's CNI binary directory, that lists the
// plugins ovsmesh's install-cni put there: ovsmesh itself, and host-local or portmap only when
// the node had none. Uninstall removes exactly these, so a node's own plugins are never
// touched, and nothing ovsmesh brought stays behind. A runtime only ever executes plugins by
// the type names in a conflist, so the file is inert in that directory.
const InstalledPluginsRecord = ".ovsmesh-installed"

// RecordInstalledPlugins adds names to the record in dir (an upgrade that finds its earlier
// host-local in place installs nothing new, and the record keeps it). The record is replaced
// atomically.
func RecordInstalledPlugins(dir string, names []string) error {
	set := map[string]bool{}
	old, err := readInstalledPlugins(dir)
	if err != nil {
		return err
	}
	for _, n := range append(old, names...) {
		set[n] = true
	}
	var all []string
	for n := range set {
		all = append(all, n)
	}
	sort.Strings(all)
	_, err = writeFileAtomic(dir, InstalledPluginsRecord, []byte(strings.Join(all, "\n")+"\n"))
	return err
}

func readInstalledPlugins(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, InstalledPluginsRecord))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		// Plain file names only: a record that names a path is not ours to follow.
		if l = strings.TrimSpace(l); l != "" && !strings.ContainsAny(l, "/\\") && l != "." && l != ".." {
			names = append(names, l)
		}
	}
	return names, nil
}

// removeInstalledPlugins removes the plugins the record in dir lists, then the record. No
// record (a node set up by hand, the netns harness) removes nothing.
func removeInstalledPlugins(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	names, err := readInstalledPlugins(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, n := range names {
		if ok, err := removeFile(dir, n); err != nil {
			errs = append(errs, fmt.Errorf("removing CNI plugin %s: %w", n, err))
		} else if ok {
			removed = append(removed, "removed CNI plugin "+filepath.Join(dir, n))
		}
	}
	if len(errs) == 0 {
		if _, err := removeFile(dir, InstalledPluginsRecord); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// missingPlugins lists the plugin types the conflist conf names (each plugin's and each
// IPAM's) that dir holds no executable for. A runtime fails every pod sandbox on such a
// config, while the node reports its network ready the moment the file appears: the agent
// checks before it writes.
func missingPlugins(dir string, conf []byte) ([]string, error) {
	var list struct {
		Plugins []struct {
			Type string `json:"type"`
			IPAM struct {
				Type string `json:"type"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(conf, &list); err != nil {
		return nil, fmt.Errorf("reading back the CNI config: %w", err)
	}
	var missing []string
	seen := map[string]bool{}
	for _, p := range list.Plugins {
		for _, typ := range []string{p.Type, p.IPAM.Type} {
			if typ == "" || seen[typ] {
				continue
			}
			seen[typ] = true
			fi, err := os.Stat(filepath.Join(dir, typ))
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
				missing = append(missing, typ)
			}
		}
	}
	return missing, nil
}
