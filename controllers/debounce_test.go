package controllers

import (
	"testing"
	"time"
)

// The pacer lets the first event through at once and holds later ones to one enqueue per
// interval, each at the earliest slot.
func TestPacer(t *testing.T) {
	now := t0
	p := &pacer{interval: time.Second, now: func() time.Time { return now }}
	steps := []struct {
		at   time.Duration
		want time.Duration
	}{
		{0, 0}, // quiet before: at once
		{100 * time.Millisecond, 900 * time.Millisecond},  // burst: the next slot
		{200 * time.Millisecond, 800 * time.Millisecond},  // the same slot
		{time.Second, time.Second},                        // the slot may have begun: the next
		{1050 * time.Millisecond, 950 * time.Millisecond}, // that one
		{5 * time.Second, 0},                              // quiet again: at once
	}
	for _, s := range steps {
		now = t0.Add(s.at)
		if got := p.delay(); got != s.want {
			t.Errorf("event at +%v: delay %v, want %v", s.at, got, s.want)
		}
	}
}
