package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// HostVethName is the host-side veth name of an attachment: "veth" + 11 hex digits of
// sha256(containerID/ifname), 15 characters, the kernel's limit. Deriving it rather than
// picking it at random lets DEL find the link even when the pod netns is already gone.
// The "veth" prefix also makes NetworkManager ignore the link.
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return "veth" + hex.EncodeToString(sum[:])[:11]
}

// aliasPrefix starts the link alias of every host veth ovsmesh creates.
const aliasPrefix = "ovsmesh/"

// attachment identifies one attachment of a network (the spec's (containerID, ifname) pair,
// plus the network so that two ovsmesh networks on a node never GC each other's links).
type attachment struct {
	Network, ContainerID, IfName string
}

// Alias is the link alias written on the host veth. Network names, container IDs and
// interface names cannot contain '/' (skel and libcni validate them), so it parses back
// unambiguously; all three together stay far below the kernel's 255-byte alias limit.
func (a attachment) Alias() string {
	return aliasPrefix + a.Network + "/" + a.ContainerID + "/" + a.IfName
}

// parseAlias is the inverse of Alias; ok is false for links ovsmesh did not tag.
func parseAlias(alias string) (attachment, bool) {
	rest, found := strings.CutPrefix(alias, aliasPrefix)
	if !found {
		return attachment{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return attachment{}, false
	}
	return attachment{Network: parts[0], ContainerID: parts[1], IfName: parts[2]}, true
}
