package ovs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	ovsmodel "github.com/ovsmesh/ovsmesh/ovs/model"
)

// Loop-prevention protocols for BridgeSpec.Protocol.
const (
	ProtocolSTP  = "STP"
	ProtocolRSTP = "RSTP"
)

// Datapath types for BridgeSpec.DatapathType.
const (
	DatapathSystem = "system" // the kernel module
	DatapathNetdev = "netdev" // the userspace datapath
)

// BridgeSpec is the desired configuration of ovsmesh's OVS bridge (obr0).
type BridgeSpec struct {
	// Name of the bridge, at most 15 characters (it is also a network device).
	Name string
	// DatapathType is "system", "netdev" or "" (OVS's default, system).
	DatapathType string
	// Protocol is "STP" or "RSTP" (case-insensitive): the one enabled, the other
	// disabled. "" disables both: a full mesh is then a broadcast loop unless every
	// tunnel is protected (TunnelSpec.Protected, split horizon).
	Protocol string
	// Priority is the bridge priority (other_config:stp-priority or rstp-priority); nil
	// leaves OVS's default, 32768. 0 is a priority like any other: the most preferred root.
	Priority *int
	// Timers in seconds, written to other_config as stp-hello-time/stp-max-age/
	// stp-forward-delay or rstp-max-age/rstp-forward-delay. 0 leaves OVS's default (hello
	// 2 s, max age 20 s, forward delay 15 s), as none of them can be 0. RSTP's hello time is
	// fixed at 2 s (IEEE 802.1D-2004; OVS has no knob), so HelloTime only applies to STP.
	HelloTime, MaxAge, ForwardDelay int
	// FailMode is "standalone", "secure" or "" (unset: OVS behaves as standalone).
	FailMode string
}

// The other_config keys a BridgeSpec controls. EnsureBridgeOps sets or removes exactly
// these and leaves every other key (hwaddr, a user's own settings) alone.
var bridgeTimerKeys = []string{
	"stp-priority", "stp-hello-time", "stp-max-age", "stp-forward-delay",
	"rstp-priority", "rstp-max-age", "rstp-forward-delay",
}

// Validate reports the first problem with the spec, in terms of its fields.
func (s BridgeSpec) Validate() error {
	if err := validIfName(s.Name); err != nil {
		return fmt.Errorf("bridge name: %w", err)
	}
	switch s.DatapathType {
	case "", DatapathSystem, DatapathNetdev:
	default:
		return fmt.Errorf("bridge %s: datapath type %q is not system or netdev", s.Name, s.DatapathType)
	}
	switch s.FailMode {
	case "", ovsmodel.BridgeFailModeStandalone, ovsmodel.BridgeFailModeSecure:
	default:
		return fmt.Errorf("bridge %s: fail mode %q is not standalone or secure", s.Name, s.FailMode)
	}
	proto := strings.ToUpper(s.Protocol)
	if proto != "" && proto != ProtocolSTP && proto != ProtocolRSTP {
		return fmt.Errorf("bridge %s: protocol %q is not STP or RSTP", s.Name, s.Protocol)
	}
	type rng struct {
		name      string
		v, lo, hi int
	}
	if s.Priority != nil {
		maxPrio := 65535
		if proto == ProtocolRSTP {
			maxPrio = 61440
			if *s.Priority%4096 != 0 {
				return fmt.Errorf("bridge %s: RSTP priority %d is not a multiple of 4096", s.Name, *s.Priority)
			}
		}
		if *s.Priority < 0 || *s.Priority > maxPrio {
			return fmt.Errorf("bridge %s: priority %d out of range 0-%d", s.Name, *s.Priority, maxPrio)
		}
	}
	for _, r := range []rng{
		{"hello time", s.HelloTime, 1, 10},
		{"max age", s.MaxAge, 6, 40},
		{"forward delay", s.ForwardDelay, 4, 30},
	} {
		if r.v != 0 && (r.v < r.lo || r.v > r.hi) {
			return fmt.Errorf("bridge %s: %s %d out of range %d-%d", s.Name, r.name, r.v, r.lo, r.hi)
		}
	}
	return nil
}

// validIfName checks a name that becomes a Linux network device.
func validIfName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("empty")
	case len(n) > 15:
		return fmt.Errorf("%q is longer than 15 characters (IFNAMSIZ)", n)
	case strings.ContainsAny(n, "/ \t\n:") || n == "." || n == "..":
		return fmt.Errorf("%q is not a valid interface name", n)
	}
	return nil
}

// timerConfig returns the managed other_config keys the spec wants set.
func (s BridgeSpec) timerConfig() map[string]string {
	want := map[string]string{}
	set := func(k string, v int) {
		if v != 0 {
			want[k] = strconv.Itoa(v)
		}
	}
	prio := func(k string) {
		if s.Priority != nil {
			want[k] = strconv.Itoa(*s.Priority)
		}
	}
	switch strings.ToUpper(s.Protocol) {
	case ProtocolSTP:
		prio("stp-priority")
		set("stp-hello-time", s.HelloTime)
		set("stp-max-age", s.MaxAge)
		set("stp-forward-delay", s.ForwardDelay)
	case ProtocolRSTP:
		prio("rstp-priority")
		set("rstp-max-age", s.MaxAge)
		set("rstp-forward-delay", s.ForwardDelay)
	}
	return want
}

func (s BridgeSpec) failMode() *string {
	if s.FailMode == "" {
		return nil
	}
	f := s.FailMode
	return &f
}

// bridgeDiff is what has to change on an existing bridge to match the spec: the
// columns to overwrite, and the other_config keys to delete and then insert.
type bridgeDiff struct {
	Columns     []string // of datapath_type, stp_enable, rstp_enable, fail_mode
	DeleteKeys  []string
	InsertPairs map[string]string
}

func (d bridgeDiff) empty() bool {
	return len(d.Columns) == 0 && len(d.DeleteKeys) == 0 && len(d.InsertPairs) == 0
}

func diffBridge(have *ovsmodel.Bridge, s BridgeSpec) bridgeDiff {
	var d bridgeDiff
	proto := strings.ToUpper(s.Protocol)
	if have.DatapathType != s.DatapathType {
		d.Columns = append(d.Columns, "datapath_type")
	}
	if have.STPEnable != (proto == ProtocolSTP) {
		d.Columns = append(d.Columns, "stp_enable")
	}
	if have.RSTPEnable != (proto == ProtocolRSTP) {
		d.Columns = append(d.Columns, "rstp_enable")
	}
	if (have.FailMode == nil) != (s.FailMode == "") || (have.FailMode != nil && *have.FailMode != s.FailMode) {
		d.Columns = append(d.Columns, "fail_mode")
	}
	want := s.timerConfig()
	d.InsertPairs = map[string]string{}
	for _, k := range bridgeTimerKeys {
		cur, present := have.OtherConfig[k]
		nv, wanted := want[k]
		if present && (!wanted || cur != nv) {
			d.DeleteKeys = append(d.DeleteKeys, k)
		}
		if wanted && (!present || cur != nv) {
			d.InsertPairs[k] = nv
		}
	}
	return d
}

// EnsureBridgeOps appends to ops the operations that make the bridge match spec, none
// when it already does. ovs-vsctl equivalent, for a new STP bridge:
//
//	ovs-vsctl add-br obr0 -- set Bridge obr0 datapath_type=netdev stp_enable=true \
//	    other_config:stp-priority=32768 other_config:stp-forward-delay=15 \
//	    external_ids:ovsmesh.io/owner=ovsmesh
//
// and for an existing one `ovs-vsctl set Bridge obr0 ...` of only the columns and
// other_config keys that differ (other_config keys are changed one by one, as
// `other_config:key=value` does, so keys ovsmesh does not manage stay). A new bridge
// gets its local internal port, as add-br makes, and is added to Open_vSwitch.bridges;
// its rows carry uuid-names, so EnsurePortOps and SyncTunnelsOps can put ports on it in
// the same transaction. An existing bridge of that name that ovsmesh does not own is an
// ErrNotOwned error. On error ops is returned as given.
//
// The agent commits these before it adds tunnels: spanning tree must be on before the
// mesh closes a loop (ovs-vswitchd applies one transaction at once, but the agent keeps
// the order explicit: bridge transaction first, then tunnels).
func (c *Client) EnsureBridgeOps(ctx context.Context, ops []ovsdb.Operation, spec BridgeSpec) ([]ovsdb.Operation, error) {
	if err := spec.Validate(); err != nil {
		return ops, fmt.Errorf("ovs: %w", err)
	}
	v, err := c.openBridge(ctx, ops, spec.Name, anyBridge)
	if err != nil {
		return ops, err
	}
	if v.Br == nil {
		return c.createBridgeOps(ctx, ops, v, spec)
	}
	br := v.Br
	if !owned(br.ExternalIDs) {
		return ops, fmt.Errorf("ovs: bridge %s exists: %w (tag it with `ovs-vsctl br-set-external-id %s %s %s` to hand it over)",
			spec.Name, ErrNotOwned, spec.Name, OwnerKey, OwnerValue)
	}
	d := diffBridge(br, spec)
	if d.empty() {
		return ops, nil
	}
	var out []ovsdb.Operation
	want := &ovsmodel.Bridge{UUID: br.UUID, DatapathType: spec.DatapathType,
		STPEnable: strings.EqualFold(spec.Protocol, ProtocolSTP), RSTPEnable: strings.EqualFold(spec.Protocol, ProtocolRSTP),
		FailMode: spec.failMode()}
	if len(d.Columns) > 0 {
		fieldOf := map[string]any{"datapath_type": &want.DatapathType, "stp_enable": &want.STPEnable,
			"rstp_enable": &want.RSTPEnable, "fail_mode": &want.FailMode}
		var fields []any
		for _, col := range d.Columns {
			fields = append(fields, fieldOf[col])
		}
		up, err := c.ovs.Where(want).Update(want, fields...)
		if err != nil {
			return ops, fmt.Errorf("ovs: update bridge %s: %w", spec.Name, err)
		}
		out = append(out, up...)
	}
	if mut := mapMutations(&want.OtherConfig, d.DeleteKeys, d.InsertPairs); len(mut) > 0 {
		m, err := c.ovs.Where(want).Mutate(want, mut...)
		if err != nil {
			return ops, fmt.Errorf("ovs: mutate other_config of bridge %s: %w", spec.Name, err)
		}
		out = append(out, m...)
	}
	return append(ops, out...), nil
}

func (c *Client) createBridgeOps(ctx context.Context, ops []ovsdb.Operation, v *bridgeView, spec BridgeSpec) ([]ovsdb.Operation, error) {
	taken, err := v.nameTaken(ctx, c, spec.Name)
	if err != nil {
		return ops, err
	}
	if taken {
		return ops, fmt.Errorf("ovs: bridge %s: a port or interface of that name already exists on another bridge", spec.Name)
	}
	root, err := c.root(ctx, v.rows)
	if err != nil {
		return ops, err
	}
	iface := &ovsmodel.Interface{UUID: c.namedUUID("iface"), Name: spec.Name, Type: "internal", ExternalIDs: ownerTags()}
	port := &ovsmodel.Port{UUID: c.namedUUID("port"), Name: spec.Name, Interfaces: []string{iface.UUID}, ExternalIDs: ownerTags()}
	br := &ovsmodel.Bridge{
		UUID: c.namedUUID("bridge"), Name: spec.Name, Ports: []string{port.UUID},
		DatapathType: spec.DatapathType, FailMode: spec.failMode(),
		STPEnable:   strings.EqualFold(spec.Protocol, ProtocolSTP),
		RSTPEnable:  strings.EqualFold(spec.Protocol, ProtocolRSTP),
		OtherConfig: spec.timerConfig(), ExternalIDs: ownerTags(),
	}
	var out []ovsdb.Operation
	for _, m := range []model.Model{iface, port, br} {
		op, err := c.ovs.Create(m)
		if err != nil {
			return ops, fmt.Errorf("ovs: create bridge %s: %w", spec.Name, err)
		}
		out = append(out, op...)
	}
	var op []ovsdb.Operation
	if root == nil {
		// Uninitialised database: make the root row, as ovs-vsctl does.
		op, err = c.ovs.Create(&ovsmodel.OpenvSwitch{UUID: c.namedUUID("root"), Bridges: []string{br.UUID}})
	} else {
		op, err = c.ovs.Where(root).Mutate(root, model.Mutation{Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}})
	}
	if err != nil {
		return ops, fmt.Errorf("ovs: add bridge %s to Open_vSwitch: %w", spec.Name, err)
	}
	return append(append(ops, out...), op...), nil
}

// root returns the Open_vSwitch row: the cached one, else one the pending operations
// insert (only its UUID set), else nil.
func (c *Client) root(ctx context.Context, pending *pendingRows) (*ovsmodel.OpenvSwitch, error) {
	root, err := c.rootRow(ctx)
	if root == nil && err == nil && pending.root != "" {
		root = &ovsmodel.OpenvSwitch{UUID: pending.root}
	}
	return root, err
}

// LoopPrevention returns the protocol the bridge runs now, as its row says: "STP", "RSTP"
// or "" (neither), and whether the bridge exists. ovs-vsctl equivalent:
//
//	ovs-vsctl get Bridge obr0 stp_enable rstp_enable
//
// Callers changing the protocol use it to order the change (see the agent's split horizon).
func (c *Client) LoopPrevention(ctx context.Context, name string) (protocol string, exists bool, err error) {
	v, err := c.openBridge(ctx, nil, name, anyBridge)
	if err != nil || v.Br == nil {
		return "", false, err
	}
	switch {
	case v.Br.STPEnable:
		return ProtocolSTP, true, nil
	case v.Br.RSTPEnable:
		return ProtocolRSTP, true, nil
	}
	return "", true, nil
}

// DeleteBridgeOps appends to ops the operation that deletes an ovsmesh bridge with all
// its ports and interfaces, none when there is no such bridge. ovs-vsctl equivalent:
//
//	ovs-vsctl --if-exists del-br obr0
//
// It removes the bridge from Open_vSwitch.bridges; OVSDB garbage-collects the bridge,
// its ports and their interfaces, since only that reference kept them. A bridge ovsmesh
// does not own is an ErrNotOwned error. For uninstall.
func (c *Client) DeleteBridgeOps(ctx context.Context, ops []ovsdb.Operation, name string) ([]ovsdb.Operation, error) {
	v, err := c.openBridge(ctx, ops, name, anyBridge)
	if err != nil || v.Br == nil {
		return ops, err
	}
	if !owned(v.Br.ExternalIDs) {
		return ops, fmt.Errorf("ovs: delete bridge %s: %w", name, ErrNotOwned)
	}
	root, err := c.root(ctx, v.rows)
	if err != nil || root == nil || (!v.Pending && !slices.Contains(root.Bridges, v.Br.UUID)) {
		return ops, err
	}
	del, err := c.ovs.Where(root).Mutate(root, model.Mutation{Field: &root.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{v.Br.UUID}})
	if err != nil {
		return ops, fmt.Errorf("ovs: delete bridge %s: %w", name, err)
	}
	return append(ops, del...), nil
}

// mapMutations changes some keys of a map column: delete the keys (so that new values
// replace old ones: an OVSDB map insert never overwrites), then insert the pairs.
func mapMutations(field *map[string]string, deleteKeys []string, insert map[string]string) []model.Mutation {
	var m []model.Mutation
	if len(deleteKeys) > 0 {
		keys := slices.Clone(deleteKeys)
		slices.Sort(keys)
		m = append(m, model.Mutation{Field: field, Mutator: ovsdb.MutateOperationDelete, Value: keys})
	}
	if len(insert) > 0 {
		m = append(m, model.Mutation{Field: field, Mutator: ovsdb.MutateOperationInsert, Value: maps.Clone(insert)})
	}
	return m
}
