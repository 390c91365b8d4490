package plugin

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/ovsmesh/ovsmesh/cni/config"
)

// reservation is one address host-local has handed out.
type reservation struct {
	IP          netip.Addr
	ContainerID string
	IfName      string // empty for reservations written by host-local before 0.8
}

// hostLocalStoreDir is where host-local keeps the reservations of a network.
func hostLocalStoreDir(dataDir, network string) string {
	if dataDir == "" {
		dataDir = config.HostLocalDefaultDataDir
	}
	return filepath.Join(dataDir, network)
}

// readHostLocalStore lists the reservations in dir. Files whose name is not an address
// ("lock", "last_reserved_ip.0") are host-local's bookkeeping and skipped. A missing
// directory means no reservations.
func readHostLocalStore(dir string) ([]reservation, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []reservation
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if os.IsNotExist(err) {
			continue // released meanwhile
		}
		if err != nil {
			return out, err
		}
		id, ifName := parseReservation(data)
		out = append(out, reservation{IP: ip, ContainerID: id, IfName: ifName})
	}
	return out, nil
}

// parseReservation decodes a host-local reservation file: "containerID\r\nifname" (host-local
// 0.8 and later; it writes "\r\n" on every OS) or just "containerID" (older).
func parseReservation(data []byte) (containerID, ifName string) {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	id, name, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(id), strings.TrimSpace(name)
}

// staleReservations returns the reservations not held by a valid attachment. An old-format
// reservation (no ifname) counts as valid when any valid attachment has its container ID.
func staleReservations(res []reservation, valid map[attachmentKey]bool, validIDs map[string]bool) []reservation {
	var out []reservation
	for _, r := range res {
		if r.IfName == "" {
			if !validIDs[r.ContainerID] {
				out = append(out, r)
			}
			continue
		}
		if !valid[attachmentKey{r.ContainerID, r.IfName}] {
			out = append(out, r)
		}
	}
	return out
}

// attachmentKey is the spec's identity of an attachment within one network.
type attachmentKey struct{ ContainerID, IfName string }
