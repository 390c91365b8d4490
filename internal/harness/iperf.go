package harness

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Iperf3Result is what the tests and benchmarks read from `iperf3 -c ... -J`.
type Iperf3Result struct {
	BytesReceived int64
	BitsPerSecond float64 // receiver side
	Retransmits   int
	// Error is iperf3's own "error" field: a run that reports no bytes at all usually has
	// one (the control connection failed), which says more than the byte count.
	Error string
}

// ParseIperf3 decodes the JSON report of an iperf3 client run. Anything before the first
// "{" (a warning on stderr merged into the output) is skipped.
func ParseIperf3(out string) (Iperf3Result, error) {
	i := strings.Index(out, "{")
	if i < 0 {
		return Iperf3Result{}, fmt.Errorf("no iperf3 JSON report in %q", out)
	}
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				Bytes         int64   `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out[i:]), &r); err != nil {
		return Iperf3Result{}, fmt.Errorf("iperf3 JSON: %w", err)
	}
	return Iperf3Result{
		Error:         r.Error,
		BytesReceived: r.End.SumReceived.Bytes,
		BitsPerSecond: r.End.SumReceived.BitsPerSecond,
		Retransmits:   r.End.SumSent.Retransmits,
	}, nil
}
