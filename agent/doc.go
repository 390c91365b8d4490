// Package agent is the ovsmesh node agent: one level-triggered reconcile loop per node that
// makes the node's data path equal to what the API says.
//
//	pod netns        node (root netns)
//	eth0 ──veth──▶ kbr0 (Linux bridge, gateway/prefix, MTU = underlay − tunnel overhead)
//	                 │ vkbr0
//	                 │ veth pair (kernel-owned: survives ovs-vswitchd restarts)
//	                 │ vobr0
//	               obr0 (OVS bridge, STP or RSTP, datapath system|netdev)
//	                 ├── gre-<peer IP hex> / vxlan-<peer IP hex> → every other node
//	route <cluster CIDR> dev kbr0 ; ip_forward=1 ; table ip ovsmesh: masquerade pod → outside
//	send_redirects=0 (all, kbr0): pods always route through their gateway, so a pod whose
//	MTU is above kbr0's (attached before a GRE→VXLAN switch) gets "fragmentation needed"
//	instead of being redirected onto the bridge, where oversized frames vanish
//
// The loop (Reconciler, reconciler.go) is fetch → one of three paths → report:
//
//   - fetch: every NodeSubnet (this node's among them) and the NetworkCluster "default",
//     from a cache limited to exactly those by field selectors (NewManager);
//   - leave (leave.go): no NodeSubnet for this node. The API server is asked directly (the
//     cache may lag) before anything is removed; a node that had a data path is cleaned;
//   - teardown: NodeSubnet spec.teardown (uninstall): Cleaner removes everything, and the
//     status says CleanedUp;
//   - converge: the underlay interface (the one holding the node IP; its MTU sizes the
//     pods') and Desired, a pure function of (cluster spec, NodeSubnets, node name, underlay
//     MTU) → NodeState; then the Applier: the host side through hostnet (netlink, nftables,
//     /proc/sys), the OVS side through package ovs (bridge with its loop prevention first,
//     then the veth port, then the whole tunnel mesh in one transaction), the CNI config
//     (written atomically and only when its bytes change), and last the ports' state as
//     ovs-vswitchd reports it, which tunnelReport turns into the tunnel summary;
//   - report, once per pass in a deferred call (report.go): this node's NodeSubnet status
//     (Ready with a reason, tunnel counts, the peers that need attention, MTU,
//     observedGeneration of the NetworkCluster applied) and its Node's NetworkUnavailable
//     condition, each written only when it changed; Events on transitions (events.go).
//
// Every step is diff-based, so a pass over a node that is already right changes nothing:
// zero OVSDB operations, no link deleted or recreated, no file rewritten. That is what makes
// the agent safe to restart under traffic; it also never tears anything down on exit.
// Teardown happens only when the operator sets NodeSubnet spec.teardown (uninstall), when
// the node leaves the mesh (its NodeSubnet deleted), or when an administrator runs
// `ovsmesh-agent cleanup`; all three take the same path (Cleaner).
//
// Every call has a deadline (deadlines.go): a pass, each API write, each OVSDB round trip,
// each unixctl exchange. An ovsdb-server that dies or hangs after the agent connected is
// reported as OVSUnavailable within seconds (package ovs probes the connection), and the
// data path is left as it is. Beside the loop, Heartbeat renews the node's heartbeat Lease
// every 10 s, so the operator can tell a node whose agent stopped from one whose last report
// still holds.
//
// Errors never crash the agent: a missing OVS socket, a node IP on no interface or a kbr0
// that belongs to something else become Ready=False with a reason and message, and the pass
// is retried with exponential backoff (0.5 s to 30 s). OVS change and reconnect
// notifications arrive through a source.Channel, so an ovsdb-server or ovs-vswitchd restart
// triggers a reapply, and spanning-tree or BFD transitions refresh the status.
package agent
