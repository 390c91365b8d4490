package kubenodes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// The reference pod network the benchmarks compare ovsmesh with: Debian's bridge, host-local
// and portmap (containernetworking-plugins), one node-local subnet each, no routes between
// nodes (a pod only needs its address to start).
const (
	refConflistFile = "05-ref.conflist"
	refConflist     = `{"cniVersion": "1.0.0", "name": "ref", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.%d.0/24"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
`
)

var refPlugins = []string{"bridge", "host-local", "portmap"}

// InstallReferenceCNI puts the reference plugins into the node's /opt/cni/bin and its
// conflist into /etc/cni/net.d, written whole (containerd must never read half a file).
func (n *Node) InstallReferenceCNI() error {
	for _, p := range refPlugins {
		if err := copyFile(filepath.Join("/usr/lib/cni", p), filepath.Join(n.CNIBinDir(), p)); err != nil {
			return err
		}
	}
	tmp := filepath.Join(n.CNIConfDir(), "."+refConflistFile+".tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf(refConflist, n.Index)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(n.CNIConfDir(), refConflistFile))
}

// RemoveReferenceCNI takes the reference network off the node again: its conflist, its
// plugins and its bridge, leaving the node with no pod network.
func (n *Node) RemoveReferenceCNI(ctx context.Context) {
	_ = os.Remove(filepath.Join(n.CNIConfDir(), refConflistFile))
	for _, p := range refPlugins {
		_ = os.Remove(filepath.Join(n.CNIBinDir(), p))
	}
	_, _ = n.Exec(ctx, "ip", "link", "del", "cni0")
}
