package controllers

import (
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// planInput is everything the IPAM pass decides from: read from the API server (NodeSubnets
// and claims uncached, so the pass never acts on a stale view of what is allocated).
type planInput struct {
	Pool     Pool
	Selector labels.Selector
	Nodes    []corev1.Node
	Subnets  []v1alpha1.NodeSubnet
	Claims   []claim
	Now      time.Time
	Grace    time.Duration // see DefaultClaimGracePeriod
}

// subnetDeletion is a NodeSubnet to remove, with the reason (for the log and events).
type subnetDeletion struct {
	Subnet *v1alpha1.NodeSubnet
	Reason string
}

// claimDeletion is a claim to release, with the reason.
type claimDeletion struct {
	Claim  claim
	Reason string
}

// allocation is a node that needs a NodeSubnet. Resume is a pending claim of an earlier pass
// (this or another replica) for this node: its CIDR is used rather than a new one.
type allocation struct {
	Node   *corev1.Node
	IP     netip.Addr
	Resume *claim
}

// nodeIPUpdate: the node's InternalIP changed; the NodeSubnet follows (tunnels go there).
type nodeIPUpdate struct {
	Subnet *v1alpha1.NodeSubnet
	IP     netip.Addr
}

// claimAdoption: a pending claim whose NodeSubnet exists gets its owner reference.
type claimAdoption struct {
	Claim  claim
	Subnet *v1alpha1.NodeSubnet
}

// subnetPlan is what one IPAM pass does. Computing it is pure; ipam_reconciler.go
// carries it out.
type subnetPlan struct {
	DeleteSubnets  []subnetDeletion
	DeleteClaims   []claimDeletion
	AdoptClaims    []claimAdoption
	BackfillClaims []*v1alpha1.NodeSubnet // NodeSubnets that have no claim (created before claims existed, or by hand)
	UpdateNodeIP   []nodeIPUpdate
	Allocate       []allocation // oldest node first, so exhaustion leaves out the newest
	NoAddress      []string     // selected nodes without an IPv4 InternalIP and without a subnet
	// Used is every subnet index that must not be handed out: the CIDRs of all existing
	// NodeSubnets (also those being deleted in this pass: they are freed by the next pass)
	// and of all claims.
	Used map[int]bool
	// SubnetUsed is the part of Used that comes from NodeSubnets: releasing a claim frees
	// its index at once unless a NodeSubnet still has it.
	SubnetUsed map[int]bool
	// RecheckAfter > 0: a pending claim reaches its grace period then.
	RecheckAfter time.Duration
}

// planSubnets computes the IPAM pass: which NodeSubnets and claims go, which nodes get a
// subnet, and what is in use.
func planSubnets(in planInput) subnetPlan {
	p := subnetPlan{Used: map[int]bool{}, SubnetUsed: map[int]bool{}}

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
	byUID := map[string]*v1alpha1.NodeSubnet{}
	keptByIndex := map[int][]*v1alpha1.NodeSubnet{}
	for i := range in.Subnets {
		s := &in.Subnets[i]
		existing[s.Name] = s
		byUID[string(s.UID)] = s
		idx, inPool := in.Pool.ParseIndex(s.Spec.CIDR)
		if inPool {
			p.Used[idx], p.SubnetUsed[idx] = true, true
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

	claimByIndex := map[int]claim{}
	for _, c := range in.Claims {
		if idx, ok := in.Pool.Index(c.CIDR); ok {
			p.Used[idx] = true
			claimByIndex[idx] = c
		}
	}

	// Two NodeSubnets with one CIDR cannot be created through claims; should one appear
	// anyway (made by hand, or by a pre-claim operator), the claim holder keeps it, or else
	// the oldest, and the others are reallocated.
	kept := map[string]*v1alpha1.NodeSubnet{}
	for idx, list := range keptByIndex {
		keep := pickKeeper(list, claimByIndex, idx)
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

	// Claims.
	pending := map[string]*claim{} // node → its lowest pending claim
	claimedCIDR := map[netip.Prefix]bool{}
	for i := range in.Claims {
		c := in.Claims[i]
		claimedCIDR[c.CIDR] = true
		if c.Owner != "" {
			if byUID[string(c.Owner)] == nil {
				p.DeleteClaims = append(p.DeleteClaims, claimDeletion{c, "its NodeSubnet is gone"})
			}
			continue
		}
		if s := existing[c.Holder]; s != nil {
			if sameCIDR(s.Spec.CIDR, c.CIDR) {
				p.AdoptClaims = append(p.AdoptClaims, claimAdoption{c, s})
			} else {
				p.DeleteClaims = append(p.DeleteClaims, claimDeletion{c, "node " + c.Holder + " got " + s.Spec.CIDR + " instead"})
			}
			continue
		}
		if other := holderOf(kept, c.CIDR); other != "" {
			p.DeleteClaims = append(p.DeleteClaims, claimDeletion{c, "NodeSubnet " + other + " already has this CIDR"})
			continue
		}
		if _, ok := wanted[c.Holder]; ok {
			if cur := pending[c.Holder]; cur == nil || lessPrefix(c.CIDR, cur.CIDR) {
				pending[c.Holder] = &c
			}
			continue
		}
		if age := in.Now.Sub(c.Created); age >= in.Grace {
			p.DeleteClaims = append(p.DeleteClaims, claimDeletion{c, "node " + c.Holder + " left the mesh before its NodeSubnet was created"})
		} else if wait := in.Grace - age; p.RecheckAfter == 0 || wait < p.RecheckAfter {
			p.RecheckAfter = wait
		}
	}
	for _, s := range kept {
		if pfx, err := netip.ParsePrefix(s.Spec.CIDR); err == nil && !claimedCIDR[pfx] {
			p.BackfillClaims = append(p.BackfillClaims, s)
		}
	}
	sort.Slice(p.BackfillClaims, func(i, j int) bool { return p.BackfillClaims[i].Name < p.BackfillClaims[j].Name })

	// Nodes that need a subnet. A NodeSubnet that exists but is deleted in this pass still
	// blocks its name: the node gets a new one in the next pass.
	for name, ip := range wanted {
		if existing[name] != nil {
			continue
		}
		p.Allocate = append(p.Allocate, allocation{Node: nodes[name], IP: ip, Resume: pending[name]})
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
	sort.Slice(p.DeleteClaims, func(i, j int) bool { return p.DeleteClaims[i].Claim.Name < p.DeleteClaims[j].Claim.Name })
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

func pickKeeper(list []*v1alpha1.NodeSubnet, claims map[int]claim, idx int) *v1alpha1.NodeSubnet {
	if c, ok := claims[idx]; ok {
		for _, s := range list {
			if s.Name == c.Holder {
				return s
			}
		}
	}
	keep := list[0]
	for _, s := range list[1:] {
		if s.CreationTimestamp.Before(&keep.CreationTimestamp) ||
			(s.CreationTimestamp.Equal(&keep.CreationTimestamp) && s.Name < keep.Name) {
			keep = s
		}
	}
	return keep
}

func holderOf(kept map[string]*v1alpha1.NodeSubnet, cidr netip.Prefix) string {
	for name, s := range kept {
		if sameCIDR(s.Spec.CIDR, cidr) {
			return name
		}
	}
	return ""
}

func sameCIDR(s string, p netip.Prefix) bool {
	q, err := netip.ParsePrefix(s)
	return err == nil && q == p
}

func lessPrefix(a, b netip.Prefix) bool { return a.Addr().Less(b.Addr()) }

func olderNode(a, b *corev1.Node) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// adoptionDeferral is how long a pass that has nodes to allocate leaves the adoption of a
// young claim to a later pass. Adopting is bookkeeping, not allocation: a pending claim whose
// NodeSubnet exists already reserves its CIDR and is recognised by every pass (AdoptClaims),
// and its owner reference only lets the garbage collector release it when the NodeSubnet goes
// while no operator runs. So during a burst of joining nodes the UPDATEs wait for a pass with
// nothing to allocate instead of holding back the next allocations; the bound keeps a steady
// trickle of joins from postponing them for ever. 30 s: longer than a thousand joins take to
// allocate on a small, loaded control plane (BENCHMARKS.md, section 1).
const adoptionDeferral = 2 * time.Minute

// splitAdoptions picks the adoptions a pass carries out now. A pass that allocates defers
// those of claims younger than adoptionDeferral; recheck > 0 is when the first deferred one
// is due (the pass requeues itself then, should nothing else wake it).
func splitAdoptions(adopts []claimAdoption, allocating bool, now time.Time) (due []claimAdoption, recheck time.Duration) {
	if !allocating {
		return adopts, 0
	}
	for _, a := range adopts {
		if age := now.Sub(a.Claim.Created); age >= adoptionDeferral {
			due = append(due, a)
		} else if wait := adoptionDeferral - age; recheck == 0 || wait < recheck {
			recheck = wait
		}
	}
	return due, recheck
}

// minPositive is the smaller of two requeue delays, 0 meaning none.
func minPositive(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// arrivals are the nodes a pass allocates after its plan: selected, with an address, and
// neither handled by the pass (planned, allocated, or holding a NodeSubnet when the pass
// listed them) nor being deleted; oldest first, as in the plan. Nothing else of the plan is
// needed for them: a node that joined after the pass's listings has no claim or NodeSubnet
// the pass knows of, and should another replica have made one meanwhile, the claim and the
// NodeSubnet's name settle it as in any race between replicas (claims.go).
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
