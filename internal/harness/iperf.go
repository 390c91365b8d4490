package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// Iperf3 runs `iperf3 -c serverIP -t seconds -J` in clientNS against a server the caller
// started (`iperf3 -s -1 -B serverIP`) and returns the report with the raw output.
//
// Starting the server returns before it listens, and Debian's iperf3 3.12 exits 0 with a
// JSON report whose "error" is "unable to connect to server: Connection refused" when the
// client is first: on a loaded machine that happens, and read as a run it looks like a
// data path that moved 0 bytes. So a refused connection is retried until within passes; a
// refused connection never reaches the one-off server, which still waits for the real run.
// Any other error is returned; a completed run is returned however small it is.
func Iperf3(ctx context.Context, clientNS, serverIP string, seconds int, within time.Duration) (Iperf3Result, string, error) {
	deadline := time.Now().Add(within)
	for {
		out, err := inNS(ctx, clientNS, "iperf3", "-c", serverIP, "-t", strconv.Itoa(seconds), "-J")
		res, perr := ParseIperf3(out)
		refused := strings.Contains(res.Error, "Connection refused") || (err != nil && strings.Contains(err.Error(), "Connection refused"))
		if !refused || time.Now().After(deadline) {
			switch {
			case perr != nil && err != nil:
				return Iperf3Result{}, out, fmt.Errorf("iperf3 %s → %s: %w", clientNS, serverIP, err)
			case perr != nil:
				return Iperf3Result{}, out, fmt.Errorf("iperf3 %s → %s: %w", clientNS, serverIP, perr)
			case res.Error != "":
				return res, out, fmt.Errorf("iperf3 %s → %s: %s", clientNS, serverIP, res.Error)
			}
			return res, out, nil
		}
		select {
		case <-ctx.Done():
			return Iperf3Result{}, out, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
