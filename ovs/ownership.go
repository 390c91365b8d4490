package ovs

import "errors"

// Every row ovsmesh creates carries external_ids:ovsmesh.io/owner=ovsmesh; that tag is
// what makes a row ovsmesh's to update or delete. Tunnel ports also carry
// ovsmesh.io/tunnel-peer=<peer name>, which is how SyncTunnels finds the tunnels it
// manages. Inspect them with e.g.
//
//	ovs-vsctl --columns=name,external_ids find Port external_ids:ovsmesh.io/owner=ovsmesh
const (
	OwnerKey      = "ovsmesh.io/owner"
	OwnerValue    = "ovsmesh"
	TunnelPeerKey = "ovsmesh.io/tunnel-peer"
)

// ErrNotOwned is wrapped by errors about rows ovsmesh would have to change but does not
// own (no external_ids:ovsmesh.io/owner=ovsmesh). ovsmesh never modifies such rows: a
// user hands one over by tagging it, e.g.
// `ovs-vsctl br-set-external-id obr0 ovsmesh.io/owner ovsmesh`.
var ErrNotOwned = errors.New("not owned by ovsmesh")

// ErrNoBridge is wrapped when an operation needs a bridge that does not exist.
var ErrNoBridge = errors.New("no such bridge")

func owned(externalIDs map[string]string) bool {
	return externalIDs[OwnerKey] == OwnerValue
}

func ownerTags() map[string]string {
	return map[string]string{OwnerKey: OwnerValue}
}
