package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of ds by the nearest-rank method:
// the smallest sample with at least p% of the samples at or below it. It returns 0 for no
// samples.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}

// Ratio is ours/ref, or NaN when ref is zero (never a silent infinity in a report).
func Ratio(ours, ref float64) float64 {
	if ref == 0 {
		return math.NaN()
	}
	return ours / ref
}

// DurRatio is Ratio of two durations.
func DurRatio(ours, ref time.Duration) float64 { return Ratio(float64(ours), float64(ref)) }

// Figure is one reported number: ovsmesh's value, the reference's, their ratio and the
// target the ratio is held to.
type Figure struct {
	Name   string  `json:"name"`
	Ours   string  `json:"ours"`
	Ref    string  `json:"ref"`
	Ratio  float64 `json:"ratio"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
	Note   string  `json:"note,omitempty"`
}

// Row renders the figure as a markdown table row.
func (f Figure) Row() string {
	met := "✅ met"
	switch {
	case f.Target == NoTarget:
		met = ""
	case !f.Met:
		met = "❌ missed"
	}
	return fmt.Sprintf("| %s | %s | %s | %.3g× | %s | %s |", f.Name, f.Ours, f.Ref, f.Ratio, f.Target, met)
}

// NoTarget is the target of a figure reported beside its reference with no bound on the ratio.
const NoTarget = "—"

// Reported makes a figure with no target: both values and their ratio, for the record.
func Reported(name, ours, ref string, ratio float64, note string) Figure {
	return Figure{Name: name, Ours: ours, Ref: ref, Ratio: ratio, Target: NoTarget, Met: true, Note: note}
}

// AtMost makes a figure whose ratio must be at most limit (ours slower is worse).
func AtMost(name, ours, ref string, ratio, limit float64) Figure {
	return Figure{Name: name, Ours: ours, Ref: ref, Ratio: ratio, Target: fmt.Sprintf("≤ %g×", limit), Met: ratio <= limit}
}

// AtLeast makes a figure whose ratio must be at least limit.
func AtLeast(name, ours, ref string, ratio, limit float64) Figure {
	return Figure{Name: name, Ours: ours, Ref: ref, Ratio: ratio, Target: fmt.Sprintf("≥ %g×", limit), Met: ratio >= limit}
}

// ms formats a duration in milliseconds with three significant digits (seconds from 10 s).
func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return secs(d)
	}
	return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
}

// secs formats a duration in seconds.
func secs(d time.Duration) string {
	return fmt.Sprintf("%.3g s", d.Seconds())
}
