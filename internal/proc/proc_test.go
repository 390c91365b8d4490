package proc

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartOutputTail(t *testing.T) {
	p, err := Start(t.TempDir(), "echo", "", []string{"PROC_TEST=hello"}, "sh", "-c", `echo one; echo "$PROC_TEST"`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Output(10 * time.Second)
	if err != nil || out != "one\nhello\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	if !p.Exited() || p.Tail(1) != "hello" {
		t.Errorf("Exited %v, Tail(1) %q", p.Exited(), p.Tail(1))
	}
}

// TestStopKillsTheGroup: Stop ends a process that ignores nothing, and its children with it.
func TestStopKillsTheGroup(t *testing.T) {
	p, err := Start(t.TempDir(), "sleeper", "", nil, "sh", "-c", "sleep 60 & echo $!; wait")
	if err != nil {
		t.Fatal(err)
	}
	var child int
	if err := WaitFor(context.Background(), 5*time.Second, 10*time.Millisecond, func() bool {
		_, err := fmt.Sscan(p.Tail(1), &child)
		return err == nil && child > 0
	}); err != nil {
		p.Kill()
		t.Fatalf("no child pid: %v (log %q)", err, p.Tail(3))
	}
	p.Stop(5 * time.Second)
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
	if err := WaitFor(context.Background(), 5*time.Second, 10*time.Millisecond, func() bool {
		return syscall.Kill(child, 0) != nil
	}); err != nil {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Errorf("child %d of the group survived Stop", child)
	}
}

func TestOutputTimeoutKills(t *testing.T) {
	p, err := Start(t.TempDir(), "hang", "", nil, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Output(100 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("Output on a hanging process: %v", err)
	}
	if !p.Exited() {
		t.Error("a timed-out process was left running")
	}
}

func TestWaitForTimesOut(t *testing.T) {
	n := 0
	err := WaitFor(context.Background(), 50*time.Millisecond, 10*time.Millisecond, func() bool { n++; return false })
	if err == nil || n < 2 {
		t.Errorf("WaitFor = %v after %d polls, want a timeout after several", err, n)
	}
}

// TestInterruptLetsItReport: Interrupt is Ctrl-C: a process that traps SIGINT gets to write
// its last words (as ping writes its summary) before it exits.
func TestInterruptLetsItReport(t *testing.T) {
	p, err := Start(t.TempDir(), "trap", "", nil, "sh", "-c", `trap 'echo summary; exit 0' INT; echo ready; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(context.Background(), 5*time.Second, 10*time.Millisecond, func() bool { return p.Tail(1) == "ready" }); err != nil {
		p.Kill()
		t.Fatal("never ready")
	}
	p.Interrupt(5 * time.Second)
	if out, err := p.Output(time.Second); err != nil || !strings.HasSuffix(out, "summary\n") {
		t.Errorf("after Interrupt: %q %v", out, err)
	}
}
