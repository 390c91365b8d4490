// Package ovs is ovsmesh's only way into Open vSwitch: it reads and writes the
// Open_vSwitch database (OVSDB) over ovsdb-server's unix socket with libovsdb, and never
// runs ovs-vsctl. What it writes is meant to be read with ovs-vsctl.
//
// It uses github.com/ovn-kubernetes/libovsdb, the maintained continuation of libovsdb
// (github.com/ovn-org/libovsdb is frozen at v0.7.0 since the project moved). The models
// in package model are generated from the Open_vSwitch schema by libovsdb's modelgen.
//
// # Shape
//
// Dial connects and keeps a cache of the Open_vSwitch, Bridge, Port and Interface
// tables. Reads come from that cache. Every write has one shape, as in ovn-kubernetes'
// libovsdb ops: a builder
//
//	XOps(ctx, ops []ovsdb.Operation, ...) ([]ovsdb.Operation, error)
//
// appends its operations to the caller's list and returns it (as given, on error), and
// Transact commits a list as one transaction. The builders are EnsureBridgeOps,
// EnsurePortOps, DeletePortOps, DeleteBridgeOps and SyncTunnelsOps (which also returns a
// SyncResult); each names its ovs-vsctl equivalent, is idempotent (nothing appended when
// the database already matches) and makes only the operations of what differs. A builder
// reads the cache together with the rows its list already inserts, so a bridge, its ports
// and its tunnels can be built into one list: the new rows carry uuid-names and the later
// builders refer to the bridge by its uuid-name. SyncTunnels is SyncTunnelsOps plus
// Transact, for callers that commit the mesh on its own.
//
// The agent's sequence on a node (two transactions: it keeps the bridge's loop prevention
// ahead of the tunnels that could close a loop):
//
//	c, err := ovs.Dial(ctx, ovs.Options{Logger: log})
//	ops, err := c.EnsureBridgeOps(ctx, nil, ovs.BridgeSpec{Name: "obr0", DatapathType: "netdev",
//		Protocol: "STP", Priority: ptr.To(32768), HelloTime: 2, MaxAge: 20, ForwardDelay: 15})
//	err = c.Transact(ctx, ops...)                  // spanning tree on before any tunnel exists
//	ops, err = c.EnsurePortOps(ctx, nil, "obr0", "vobr0", ovs.PortSystem)
//	ops, res, err := c.SyncTunnelsOps(ctx, ops, "obr0", peers) // one port per peer
//	err = c.Transact(ctx, ops...)                  // the veth port and the mesh at once
//	err = res.Err()                                // tunnel names a user's port holds
//	states, err := c.PortStates(ctx, "obr0")       // STP/RSTP/BFD for NodeSubnet status
//	<-c.Changes()                                  // something changed, or OVS restarted: run again
//
// and on uninstall DeleteBridgeOps. Every call is idempotent, so the agent simply runs
// the sequence again whenever Changes fires.
//
// A rejected transaction is a *TxnError naming the failed operation; it unwraps to
// libovsdb's typed OVSDB error (*ovsdb.ConstraintViolation,
// *ovsdb.ReferentialIntegrityViolation, ...) or ErrRowGone, for errors.As and errors.Is.
// A lost connection is ErrUnavailable instead.
//
// # Deadlines and liveness
//
// Every round trip to ovsdb-server is bounded (10 s per transaction, on top of the caller's
// context; Dial by its connect timeout). A lost connection is redialled forever; a server that
// stops answering without closing the socket is found by an echo probe (every 1 s, 2 s to
// answer) and treated as lost: Connected turns false, calls in flight end with ErrUnavailable,
// Changes fires. With Options.FailFast, as the agent dials, calls made while disconnected fail
// at once instead of waiting for the reconnect. See liveness.go.
//
// # Ownership
//
// Everything ovsmesh creates carries external_ids:ovsmesh.io/owner=ovsmesh, tunnel ports
// also ovsmesh.io/tunnel-peer=<node>. ovsmesh changes and deletes only rows with that tag;
// a user's bridges and ports, even on obr0, are left as they are (see ErrNotOwned).
//
// # Port names
//
// A tunnel port is named after its type and the peer's IPv4 address in hex (PortName):
// "gre-ac1e0002" is the GRE tunnel to 172.30.0.2, "vxlan-ac1e0002" the VXLAN one.
//
// # Example
//
// A three-node cluster (underlay addresses 172.30.0.1-3, GRE tunnels, STP) as the agent
// builds it with the calls above; TestDocShowsRealOutput rebuilds it against real
// ovsdb-servers and checks this text (ports come in hash order).
//
// `ovs-vsctl show` on node1:
//
//	d475ade0-89a3-4254-86d2-a171f6682d06
//	    Bridge obr0
//	        datapath_type: netdev
//	        Port gre-ac1e0002
//	            Interface gre-ac1e0002
//	                type: gre
//	                options: {remote_ip="172.30.0.2"}
//	        Port gre-ac1e0003
//	            Interface gre-ac1e0003
//	                type: gre
//	                options: {remote_ip="172.30.0.3"}
//	        Port obr0
//	            Interface obr0
//	                type: internal
//	        Port vobr0
//	            Interface vobr0
//
// `ovs-vsctl show` on node2:
//
//	c8758633-5506-428c-bb9a-66f8c8dd308c
//	    Bridge obr0
//	        datapath_type: netdev
//	        Port obr0
//	            Interface obr0
//	                type: internal
//	        Port gre-ac1e0001
//	            Interface gre-ac1e0001
//	                type: gre
//	                options: {remote_ip="172.30.0.1"}
//	        Port gre-ac1e0003
//	            Interface gre-ac1e0003
//	                type: gre
//	                options: {remote_ip="172.30.0.3"}
//	        Port vobr0
//	            Interface vobr0
//
// `ovs-vsctl show` on node3:
//
//	ef60db6b-0565-4961-b4c7-f8c208cc8c17
//	    Bridge obr0
//	        datapath_type: netdev
//	        Port gre-ac1e0001
//	            Interface gre-ac1e0001
//	                type: gre
//	                options: {remote_ip="172.30.0.1"}
//	        Port obr0
//	            Interface obr0
//	                type: internal
//	        Port gre-ac1e0002
//	            Interface gre-ac1e0002
//	                type: gre
//	                options: {remote_ip="172.30.0.2"}
//	        Port vobr0
//	            Interface vobr0
//
// With ovs-vswitchd running, tunnels with BFD also show their bfd_status. After the
// cluster switches to VXLAN with key 42, one SyncTunnels transaction replaces each GRE
// port with one like this (options as TestSyncTunnels checks them):
//
//	Port vxlan-ac1e0002
//	    Interface vxlan-ac1e0002
//	        type: vxlan
//	        options: {dst_port="4789", key="42", remote_ip="172.30.0.2"}
//
// `ovs-vsctl list Bridge obr0` shows the STP settings (stp_enable, other_config:stp-*),
// `ovs-vsctl --columns=name,external_ids list Port` the ownership tags, and `ovs-vsctl
// get Port gre-ac1e0002 status:stp_state` what PortStates reports.
package ovs
