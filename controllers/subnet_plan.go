package controllers

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// planInput is everything the IPAM pass decides from: read from the API server (NodeSubnets
// uncached, so the pass never acts on a stale view of what is allocated).
type planInput struct {
	Pool     Pool
	Selector labels.Selector
	Nodes    []corev1.Node
	Subnets  []v1alpha1.NodeSubnet
}

// subnetDeletion is a NodeSubnet to remove, with the reason (for the log and events).
type subnetDeletion struct {
	Subnet *v1alpha1.NodeSubnet
	Reason string
}

// allocation is a node that needs a NodeSubnet.
type allocation struct {
	Node *corev1.Node
	IP   netip.Addr
}

// nodeIPUpdate: the node's InternalIP changed; the NodeSubnet follows (tunnels go there).
type nodeIPUpdate struct {
	Subnet *v1alpha1.NodeSubnet
	IP     netip.Addr
}

// subnetPlan is what one IPAM pass does. Computing it is pure; ipam_reconciler.go
// carries it out.
type subnetPlan struct {
	DeleteSubnets []subnetDeletion
	UpdateNodeIP  []nodeIPUpdate
	Allocate      []allocation // oldest node first, so exhaustion leaves out the newest
	NoAddress     []string     // selected nodes without an IPv4 InternalIP and without a subnet
	// Used is every subnet index that must not be handed out: the CIDRs of all existing
	// NodeSubnets (also those being deleted in this pass: they are freed by the next pass).
	Used map[int]bool
}

// planSubnets computes the IPAM pass: which NodeSubnets go, which nodes get a subnet, and
// what is in use.
func planSubnets(in planInput) subnetPlan {
	p := subnetPlan{Used: map[int]bool{}}

	nodes := map[string]*corev1.Node{}
	wanted := map[string]netip.Addr{} // in the mesh, with an address
	for i := range in.Nodes {
		n := &in.Nodes[i]
		nodes[n.Name] = n
		if nodeInMesh(n, in.Selector) {
			if ip, ok := internalIPv4(n); ok {
				wanted[n.Name] = ip
			}
		}
	}

	// Existing NodeSubnets: which stay, which go.
	existing := map[string]*v1alpha1.NodeSubnet{} // by name, every object that exists
	keptByIndex := map[int][]*v1alpha1.NodeSubnet{}
	for i := range in.Subnets {
		s := &in.Subnets[i]
		existing[s.Name] = s
		idx, inPool := in.Pool.ParseIndex(s.Spec.CIDR)
		if inPool {
			p.Used[idx] = true
		}
		if s.DeletionTimestamp != nil {
			continue
		}
		n := nodes[s.Spec.NodeName]
		switch {
		case n == nil || n.DeletionTimestamp != nil:
			p.DeleteSubnets = append(p.DeleteSubnets, subnetDeletion{s, "node " + s.Spec.NodeName + " is gone"})
		case !nodeInMesh(n, in.Selector):
			p.DeleteSubnets = append(p.DeleteSubnets, subnetDeletion{s, "node " + s.Spec.NodeName + " no longer matches the node selector"})
		case ownedByOtherNode(s, n):
			// The node was deleted and re-created under the same name: this NodeSubnet
			// belongs to the old one (and the garbage collector would remove it anyway).
			p.DeleteSubnets = append(p.DeleteSubnets, subnetDeletion{s, "it belongs to an earlier node named " + n.Name})
		case !inPool:
			p.DeleteSubnets = append(p.DeleteSubnets, subnetDeletion{s, "its CIDR " + s.Spec.CIDR + " is not a node subnet of the cluster CIDR"})
		default:
			keptByIndex[idx] = append(keptByIndex[idx], s)
		}
	}

	// Two NodeSubnets with one CIDR: one was created by an allocator after its block had
	// changed hands, and that allocator died before its fence (blocks.go), or one was made by
	// hand. The one of the later epoch keeps the CIDR; the others are reallocated.
	kept := map[string]*v1alpha1.NodeSubnet{}
	for _, list := range keptByIndex {
		keep := pickKeeper(list)
		for _, s := range list {
			if s == keep {
				kept[s.Name] = s
				continue
			}
			p.DeleteSubnets = append(p.DeleteSubnets, subnetDeletion{s, "its CIDR " + s.Spec.CIDR + " is also held by NodeSubnet " + keep.Name})
		}
	}
	for name, s := range kept {
		if ip, ok := wanted[name]; ok && ip.String() != s.Spec.NodeIP {
			p.UpdateNodeIP = append(p.UpdateNodeIP, nodeIPUpdate{s, ip})
		}
	}

	// Nodes that need a subnet. A NodeSubnet that exists but is deleted in this pass still
	// blocks its name: the node gets a new one in the next pass.
	for name, ip := range wanted {
		if existing[name] != nil {
			continue
		}
		p.Allocate = append(p.Allocate, allocation{Node: nodes[name], IP: ip})
	}
	sort.Slice(p.Allocate, func(i, j int) bool { return olderNode(p.Allocate[i].Node, p.Allocate[j].Node) })
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if _, ok := wanted[n.Name]; !ok && nodeInMesh(n, in.Selector) && existing[n.Name] == nil {
			p.NoAddress = append(p.NoAddress, n.Name)
		}
	}
	sort.Strings(p.NoAddress)
	sort.Slice(p.DeleteSubnets, func(i, j int) bool { return p.DeleteSubnets[i].Subnet.Name < p.DeleteSubnets[j].Subnet.Name })
	return p
}

// ownedByOtherNode: s has an owner reference to a Node of its name with another UID.
func ownedByOtherNode(s *v1alpha1.NodeSubnet, n *corev1.Node) bool {
	for _, o := range s.OwnerReferences {
		if o.Kind == "Node" && o.APIVersion == "v1" && o.UID != n.UID {
			return true
		}
	}
	return false
}

// pickKeeper: of NodeSubnets sharing a CIDR, the one allocated under the highest block
// epoch (blocks.go: the later holder's re-list saw every NodeSubnet created before its
// takeover, so the other one was created after it), then the oldest, then by name.
func pickKeeper(list []*v1alpha1.NodeSubnet) *v1alpha1.NodeSubnet {
	keep := list[0]
	for _, s := range list[1:] {
		es, ek := subnetEpoch(s), subnetEpoch(keep)
		switch {
		case es != ek:
			if es > ek {
				keep = s
			}
		case s.CreationTimestamp.Before(&keep.CreationTimestamp),
			s.CreationTimestamp.Equal(&keep.CreationTimestamp) && s.Name < keep.Name:
			keep = s
		}
	}
	return keep
}

func olderNode(a, b *corev1.Node) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// arrivals are the nodes a pass allocates after its plan: selected, with an address, and
// neither handled by the pass (planned, allocated, or holding a NodeSubnet when the pass
// listed them) nor being deleted; oldest first, as in the plan. Nothing else of the plan is
// needed for them: a node that joined after the pass's listings has no NodeSubnet the pass
// knows of, and should another replica have made one meanwhile, the NodeSubnet's name settles
// it as in any race between replicas (blocks.go).
func arrivals(nodes []corev1.Node, sel labels.Selector, handled map[string]bool) []allocation {
	var out []allocation
	for i := range nodes {
		n := &nodes[i]
		if handled[n.Name] || n.DeletionTimestamp != nil || !nodeInMesh(n, sel) {
			continue
		}
		if ip, ok := internalIPv4(n); ok {
			out = append(out, allocation{Node: n, IP: ip})
		}
	}
	sort.Slice(out, func(i, j int) bool { return olderNode(out[i].Node, out[j].Node) })
	return out
}
