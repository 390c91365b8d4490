package controllers

// Why subnet blocks exist
//
// The API server is the only place IPAM state lives: the NodeSubnets are the allocations, and
// a CIDR is free exactly when no NodeSubnet has it. What the API cannot give is uniqueness of
// a CIDR across NodeSubnets: a NodeSubnet is named after its node (the API enforces it), so
// two allocators racing for two different nodes (two operator replicas, a leader and the one
// that replaces it, a stale cache) could both create a NodeSubnet with the same CIDR, and no
// listing before creating can prevent it.
//
// So the cluster CIDR is cut into blocks of subnetsPerBlock consecutive node subnets, and an
// allocator hands out a CIDR only from a block it holds. A block is held through a Lease
// (coordination.k8s.io) in the operator's namespace named after the block,
// ovsmesh-block-10-244-0-0-19-24 (the block 10.244.0.0/19 of /24s): holderIdentity is the
// allocator (one identity per process), renewTime and leaseDurationSeconds say until when,
// leaseTransitions is the block's epoch, raised by every change of holder. The API server lets
// only one create of a name succeed and only one update of a resourceVersion, which is what
// makes a block's holder unique at any moment; inside one process a single reconcile key and
// the picker's lock keep allocations apart. An allocation is then ONE request, the NodeSubnet
// create (with its block's epoch in an annotation), plus, once per 32 allocations, the block's
// acquisition; kube-controller-manager's node IPAM makes one PATCH per node the same way,
// with its own in-memory bitmap under leader election.
//
// A pass (re)acquires every block it allocates from (blockStep, pure):
//
//	no Lease                     create it (epoch: above any NodeSubnet's of the block)
//	held by this allocator       renew it (same epoch: nobody else held it in between)
//	released, or expired         take it over (epoch + 1), then re-list the NodeSubnets
//	held by another, not expired leave it; allocate from another block, or wait
//
// Every write carries the resourceVersion of the pass's listing of the blocks, which is taken
// before its listing of the NodeSubnets: a create or renewal that succeeds proves nobody
// acquired the block since that listing, so every NodeSubnet a holder created in it is in the
// pass's used set. A takeover cannot prove that (the previous holder may have allocated until
// a moment ago), so it re-lists the NodeSubnets after its write. Held blocks are renewed during
// a pass (every third of the lease duration), not between passes, and released (holder
// cleared, epoch kept) when the operator stops, so a restarted or replacing operator takes
// them over at once; a crashed one's blocks are taken over once their Lease expires, and until
// then others allocate from other blocks.
//
// The fence. Expiry is time-based, so an allocator that stalled longer than the lease
// duration can create a NodeSubnet after its block was taken over and the CIDR handed out
// again. So a pass reads the blocks back (one uncached LIST) after its last create, and takes
// back every NodeSubnet whose block is no longer held by it in the epoch it was created under
// (confirm). A read any time after the create answers "did I still hold the block when my
// NodeSubnet appeared?", and the later holder's re-list after its takeover sees every
// NodeSubnet created before the takeover, so a CIDR is shared only by a NodeSubnet created
// after its block changed hands. Should its allocator die before its fence, the next pass
// sees two NodeSubnets with one CIDR and keeps the one of the higher epoch (pickKeeper): the
// one allocated by the block's later holder. An uninstall, or a person, deleting a block's
// Lease is the same as an expiry: the fence refuses what was created under it, and a new
// Lease starts above every epoch its NodeSubnets carry.
//
// Releasing a CIDR is deleting its NodeSubnet (the garbage collector does that with the Node,
// even while no operator runs): there is nothing else to clean up, so the blocks themselves
// are never deleted while the NetworkCluster exists.

import (
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

const (
	// LabelSubnetClaim marks the block Leases (value "true"); per-subnet claims of earlier
	// versions carried it too.
	LabelSubnetClaim = "network.ovsmesh.io/subnet-claim"
	// AnnotationClaimCIDR holds a block's CIDR in its usual notation.
	AnnotationClaimCIDR = "network.ovsmesh.io/cidr"
	// AnnotationBlockEpoch on a NodeSubnet is the epoch of its block's Lease it was allocated
	// under (see pickKeeper).
	AnnotationBlockEpoch = "network.ovsmesh.io/block-epoch"

	blockNamePrefix = "ovsmesh-block-"
	// legacyClaimPrefix names the per-subnet claims of earlier versions (one Lease per CIDR):
	// the NodeSubnets carry everything they recorded, so they are removed.
	legacyClaimPrefix = "ovsmesh-subnet-"

	// subnetsPerBlock: one block acquisition per 32 allocations (a pool smaller than that is
	// one block). 32 keeps a /16 of /24s at 8 blocks, so a second allocator (a replacing
	// leader while the old one's Lease runs out) still finds free blocks.
	subnetsPerBlock = 32
)

// blockSize is the number of subnets per block of the pool (a power of two, as the pool's).
func (p Pool) blockSize() int { return min(subnetsPerBlock, p.Size()) }

// Blocks is the number of blocks of the pool.
func (p Pool) Blocks() int { return p.Size() / p.blockSize() }

// BlockOf is the block of subnet i.
func (p Pool) BlockOf(i int) int { return i / p.blockSize() }

// BlockRange is the subnet indexes of block b: [first, end).
func (p Pool) BlockRange(b int) (first, end int) { return b * p.blockSize(), (b + 1) * p.blockSize() }

// BlockCIDR is the range block b covers.
func (p Pool) BlockCIDR(b int) netip.Prefix {
	first, _ := p.BlockRange(b)
	return netip.PrefixFrom(p.Subnet(first).Addr(), p.prefixLen-(bits.Len(uint(p.blockSize()))-1))
}

// blockName is the Lease name of block b: its CIDR and the subnets' prefix length.
func (p Pool) blockName(b int) string {
	r := strings.NewReplacer(".", "-", "/", "-")
	return blockNamePrefix + r.Replace(p.BlockCIDR(b).String()) + "-" + strconv.Itoa(p.prefixLen)
}

// block is a parsed block Lease.
type block struct {
	Index    int
	UID      types.UID
	Holder   string // "" once released
	Epoch    int32
	Renewed  time.Time
	Duration time.Duration
	Lease    *coordinationv1.Lease
}

// parseBlocks sorts the pass's labelled Leases into the pool's blocks (by index) and
// everything else (per-subnet claims of earlier versions, blocks of another pool).
func parseBlocks(p Pool, leases []coordinationv1.Lease) (blocks map[int]block, other []*coordinationv1.Lease) {
	byName := make(map[string]int, p.Blocks())
	for b := 0; b < p.Blocks(); b++ {
		byName[p.blockName(b)] = b
	}
	blocks = map[int]block{}
	for i := range leases {
		l := &leases[i]
		b, ok := byName[l.Name]
		if !ok {
			other = append(other, l)
			continue
		}
		blocks[b] = blockOf(b, l)
	}
	return blocks, other
}

func blockOf(b int, l *coordinationv1.Lease) block {
	out := block{Index: b, UID: l.UID, Lease: l}
	if h := l.Spec.HolderIdentity; h != nil {
		out.Holder = *h
	}
	if t := l.Spec.LeaseTransitions; t != nil {
		out.Epoch = *t
	}
	if t := l.Spec.RenewTime; t != nil {
		out.Renewed = t.Time
	}
	if d := l.Spec.LeaseDurationSeconds; d != nil {
		out.Duration = time.Duration(*d) * time.Second
	}
	return out
}

// blockAction is what an allocator does to use a block (see the table in the doc above).
type blockAction int

const (
	blockCreate   blockAction = iota // no Lease: create it
	blockRenew                       // held by me: renew
	blockTakeOver                    // released or expired: take it over, then re-list
	blockBusy                        // held by another allocator whose Lease runs
)

// blockStep decides what to do with a block, known = false meaning it has no Lease. A Lease
// with no or a zero duration never expires on its own (a person's, or a damaged one): it is
// busy until it is released or deleted.
func blockStep(b block, known bool, me string, now time.Time) blockAction {
	switch {
	case !known:
		return blockCreate
	case b.Holder == me:
		return blockRenew
	case b.Holder == "" || (b.Duration > 0 && now.After(b.Renewed.Add(b.Duration))):
		return blockTakeOver
	default:
		return blockBusy
	}
}

// newBlockLease is the Lease of block b held by me from now, in epoch.
func newBlockLease(namespace string, p Pool, b int, me string, epoch int32, now time.Time, d time.Duration) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        p.blockName(b),
			Namespace:   namespace,
			Labels:      managedLabels(),
			Annotations: map[string]string{AnnotationClaimCIDR: p.BlockCIDR(b).String()},
		},
	}
	l.Labels[LabelSubnetClaim] = "true"
	hold(l, me, epoch, now, d, true)
	return l
}

// hold sets the holder fields of a block Lease; acquired: a new holder (acquireTime too).
func hold(l *coordinationv1.Lease, me string, epoch int32, now time.Time, d time.Duration, acquired bool) {
	t := metav1.NewMicroTime(now)
	secs := int32(max(d/time.Second, 1))
	l.Spec.HolderIdentity, l.Spec.LeaseTransitions, l.Spec.RenewTime, l.Spec.LeaseDurationSeconds = &me, &epoch, &t, &secs
	if acquired {
		l.Spec.AcquireTime = &t
	}
}

// subnetEpoch is the block epoch a NodeSubnet was allocated under; -1 for none (a NodeSubnet
// of an earlier version, or made by hand).
func subnetEpoch(s *v1alpha1.NodeSubnet) int32 {
	v, err := strconv.ParseInt(s.Annotations[AnnotationBlockEpoch], 10, 32)
	if err != nil {
		return -1
	}
	return int32(v)
}

// maxEpochs is, per block, the highest epoch any NodeSubnet in it carries: a block Lease that
// is created (again) starts above it, so the keeper rule stays right after a deletion.
func maxEpochs(p Pool, subnets []v1alpha1.NodeSubnet) map[int]int32 {
	out := map[int]int32{}
	for i := range subnets {
		idx, ok := p.ParseIndex(subnets[i].Spec.CIDR)
		if !ok {
			continue
		}
		b := p.BlockOf(idx)
		if e, seen := out[b]; !seen || subnetEpoch(&subnets[i]) > e {
			out[b] = subnetEpoch(&subnets[i])
		}
	}
	return out
}

// NewAllocatorIdentity names an allocator process: the host (the pod's name in a cluster) and
// a random suffix, so a restarted process never mistakes its predecessor's blocks for its own.
func NewAllocatorIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "operator"
	}
	return fmt.Sprintf("%s_%s", host, utilrand.String(8))
}
