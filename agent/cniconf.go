package agent

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	cniconfig "github.com/ovsmesh/ovsmesh/cni/config"
)

// CNIConfFile is the node's conflist in the CNI configuration directory (the CNI plugin's
// package owns the name: the "10-" prefix sorts it before most other configurations).
const CNIConfFile = cniconfig.ConfListFile

// cniVersion is 1.1.0: runtimes that speak it reach STATUS (is the network ready on this
// node) and GC (remove what no pod holds). The conflist's version is passed to every plugin
// in the chain, so it names the host-local and portmap the agent ships and installs under
// its own names (cniconfig.HostLocalType, PortmapType; containernetworking-plugins v1.9.x,
// which speak 1.1.0), not the node's: the portmap distributions ship (1.1.x) stops at 1.0.0.
const cniVersion = "1.1.0"

// cniInput is the conflist a node needs, in the CNI plugin's own terms (cniconfig.Input,
// which the plugin's renderer and parser share): the ovsmesh plugin with a host-local range
// for the node subnet, routes to the cluster CIDR and default via the gateway, then portmap
// for hostPorts, each the copy the agent ships.
func cniInput(bridge string, subnet netip.Prefix, gateway netip.Addr, clusterCIDR netip.Prefix, mtu int) cniconfig.Input {
	return cniconfig.Input{
		CNIVersion: cniVersion, IPAMType: cniconfig.HostLocalType, PortmapPlugin: cniconfig.PortmapType,
		Bridge: bridge, Subnet: subnet, Gateway: gateway, ClusterCIDR: clusterCIDR, MTU: mtu, Portmap: true,
	}
}

// renderCNI produces the conflist for in with the CNI plugin's own renderer, so the writer
// (agent) and the reader (plugin) share one definition. ipamDataDir is host-local's dataDir
// ("" = its default): a setting of the agent, not of the desired state.
func renderCNI(in cniconfig.Input, ipamDataDir string) ([]byte, error) {
	in.IPAMDataDir = ipamDataDir
	return cniconfig.Render(in)
}

// writeFileAtomic makes dir/name hold data. It writes nothing when the file already holds
// exactly data (the runtime watches the directory, and an unchanged file should not look
// changed). Otherwise it writes a temporary file in the same directory, syncs it and renames
// it over the target, so a reader sees the old file or the new one, never a partial one. The
// temporary name starts with a dot and ends in .tmp so no runtime takes it for a config.
func writeFileAtomic(dir, name string, data []byte) (bool, error) {
	target := filepath.Join(dir, name)
	if cur, err := os.ReadFile(target); err == nil && bytes.Equal(cur, data) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, target); err != nil {
		return false, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return true, nil
}

// removeFile deletes dir/name; a missing file is not an error. It reports whether a file
// was removed.
func removeFile(dir, name string) (bool, error) {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
