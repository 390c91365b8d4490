package controllers

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func mustPool(t *testing.T, cidr string, l int) Pool {
	t.Helper()
	p, err := NewPool(cidr, l)
	if err != nil {
		t.Fatalf("NewPool(%s, %d): %v", cidr, l, err)
	}
	return p
}

func TestPoolDefaultLayout(t *testing.T) {
	p := mustPool(t, "10.244.0.0/16", 24)
	if p.Size() != 256 {
		t.Fatalf("size %d, want 256", p.Size())
	}
	for i, want := range map[int]string{0: "10.244.0.0/24", 1: "10.244.1.0/24", 255: "10.244.255.0/24"} {
		if got := p.Subnet(i).String(); got != want {
			t.Errorf("Subnet(%d) = %s, want %s", i, got, want)
		}
		if idx, ok := p.ParseIndex(want); !ok || idx != i {
			t.Errorf("ParseIndex(%s) = %d,%v, want %d", want, idx, ok, i)
		}
	}
	if gw := Gateway(p.Subnet(3)); gw.String() != "10.244.3.1" {
		t.Errorf("gateway %s, want 10.244.3.1", gw)
	}
}

// heldPicker is a picker of a pass that holds every block of p already (no API needed).
func heldPicker(p Pool, used map[int]bool) *picker {
	pk := &picker{pool: p, used: used, known: map[int]block{}, held: map[int]block{}, skip: map[int]bool{}, now: time.Now, log: logr.Discard()}
	for b := 0; b < p.Blocks(); b++ {
		pk.held[b] = block{Index: b, Epoch: int32(b)}
	}
	return pk
}

func TestPickerIsLowestFreeAndReusesReleased(t *testing.T) {
	p := mustPool(t, "10.244.0.0/16", 24)
	used := map[int]bool{}
	pk := heldPicker(p, used)
	for i := 0; i < 40; i++ {
		s, b, err := pk.next(context.Background())
		if err != nil || s != p.Subnet(i) || b.Index != p.BlockOf(i) || b.Epoch != int32(p.BlockOf(i)) {
			t.Fatalf("next #%d = %s in block %d (%v)", i, s, b.Index, err)
		}
	}
	delete(used, 2) // node 2 released its subnet: the next pass hands it out first
	s, _, err := heldPicker(p, used).next(context.Background())
	if err != nil || s.String() != "10.244.2.0/24" {
		t.Fatalf("after release next = %s %v, want 10.244.2.0/24", s, err)
	}
	if p.Free(used) != 256-40 {
		t.Errorf("Free = %d, want 216", p.Free(used))
	}
	// Free subnets only in a block another allocator holds: not exhaustion.
	full := map[int]bool{}
	for i := 0; i < p.Size(); i++ {
		full[i] = i != 200
	}
	pk = heldPicker(p, full)
	pk.skip[p.BlockOf(200)] = true
	if _, _, err := pk.next(context.Background()); !errors.Is(err, errBlocksBusy) {
		t.Errorf("free subnet only in a busy block: %v, want errBlocksBusy", err)
	}
}

func TestPoolSlash30AndExhaustion(t *testing.T) {
	// A /29 split into /30s: two subnets, each with one gateway and one pod address.
	p := mustPool(t, "10.10.0.0/29", 30)
	if p.Size() != 2 {
		t.Fatalf("size %d, want 2", p.Size())
	}
	used := map[int]bool{}
	pk := heldPicker(p, used)
	want := []struct{ cidr, gw string }{{"10.10.0.0/30", "10.10.0.1"}, {"10.10.0.4/30", "10.10.0.5"}}
	for _, w := range want {
		s, _, err := pk.next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.String() != w.cidr || Gateway(s).String() != w.gw {
			t.Errorf("got %s gw %s, want %s gw %s", s, Gateway(s), w.cidr, w.gw)
		}
	}
	if _, _, err := pk.next(context.Background()); !errors.Is(err, ErrExhausted) {
		t.Fatalf("third allocation: err %v, want ErrExhausted", err)
	}
	if p.Free(used) != 0 {
		t.Errorf("Free = %d, want 0", p.Free(used))
	}
}

func TestPoolIndexRejectsForeignSubnets(t *testing.T) {
	p := mustPool(t, "10.244.0.0/16", 24)
	for _, s := range []string{"10.245.0.0/24", "10.244.1.0/25", "10.244.0.0/16", "10.244.1.128/24", "fd00::/64", "garbage"} {
		if idx, ok := p.ParseIndex(s); ok {
			t.Errorf("ParseIndex(%s) = %d, true; want false", s, idx)
		}
	}
	// Every index maps back to itself (also for an odd prefix that is not byte aligned).
	q := mustPool(t, "172.16.0.0/12", 21)
	for _, i := range []int{0, 1, 2, 511} {
		if idx, ok := q.Index(q.Subnet(i)); !ok || idx != i {
			t.Errorf("round trip %d: %d %v (%s)", i, idx, ok, q.Subnet(i))
		}
	}
	if got := q.Subnet(511).String(); got != "172.31.248.0/21" {
		t.Errorf("last /21 of 172.16.0.0/12 = %s", got)
	}
}

func TestNewPoolRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		cidr string
		l    int
	}{
		{"10.244.0.0/16", 16}, {"10.244.0.0/16", 31}, {"10.244.1.0/16", 24}, {"fd00::/48", 64},
		{"nonsense", 24}, {"10.0.0.0/4", 30},
	} {
		if _, err := NewPool(c.cidr, c.l); err == nil {
			t.Errorf("NewPool(%s, %d) accepted", c.cidr, c.l)
		}
	}
	if g := Gateway(netip.MustParsePrefix("192.168.7.0/30")); g.String() != "192.168.7.1" {
		t.Errorf("gateway of /30 = %s", g)
	}
}
