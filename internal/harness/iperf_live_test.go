package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestIperf3WaitsForTheServer starts the client before the server listens, as a loaded
// machine does by accident: Iperf3 must retry the refused connection and return the real
// run, not iperf3's 0-byte error report (which once failed e2e runs under load).
func TestIperf3WaitsForTheServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("iperf3 not installed")
	}
	ctx := context.Background()
	ns := fmt.Sprintf("omiperf-%d", os.Getpid())
	if err := addNS(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = delNS(context.Background(), ns) })

	// Nothing listens: the refusal is retried, then reported as an error, never as a run.
	_, out, err := Iperf3(ctx, ns, "127.0.0.1", 1, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Fatalf("Iperf3 with no server = %v, want a refused-connection error\n%s", err, out)
	}

	dir := t.TempDir()
	started := make(chan *Process, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		srv, err := startProcess(dir, "iperf3-server", ns, nil, "iperf3", "-s", "-1", "-B", "127.0.0.1")
		if err != nil {
			t.Error(err)
		}
		started <- srv
	}()
	t.Cleanup(func() {
		if srv := <-started; srv != nil {
			srv.Kill()
		}
	})
	res, out, err := Iperf3(ctx, ns, "127.0.0.1", 1, 10*time.Second)
	if err != nil {
		t.Fatalf("Iperf3 with a late server: %v\n%s", err, out)
	}
	if res.BytesReceived <= 0 || res.Error != "" {
		t.Fatalf("Iperf3 with a late server = %+v, want a run that moved data\n%s", res, out)
	}
}
