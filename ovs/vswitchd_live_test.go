package ovs

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVswitchdVersion asks a real ovs-vswitchd for its version over unixctl, compares it
// with ovs-appctl's answer, and checks that a stopped, a killed (stale socket) and a hung
// ovs-vswitchd are all reported as errors.
func TestVswitchdVersion(t *testing.T) {
	srv, _ := startDB(t)
	sw := srv.StartSwitch(t)
	ctx := testCtx(t)

	got, err := VswitchdVersion(ctx, sw.Ctl)
	if err != nil {
		t.Fatalf("VswitchdVersion: %v", err)
	}
	want := strings.SplitN(strings.TrimSpace(sw.Appctl("version")), "\n", 2)[0]
	if !strings.HasPrefix(got, "ovs-vswitchd (Open vSwitch)") || !strings.HasPrefix(got, want) {
		t.Errorf("VswitchdVersion = %q, ovs-appctl version says %q", got, want)
	}
	t.Logf("ovs-vswitchd answers: %s", got)

	sw.Stop()
	if _, err := VswitchdVersion(ctx, sw.Ctl); err == nil {
		t.Error("VswitchdVersion succeeded after ovs-vswitchd exited")
	}

	// A SIGKILLed ovs-vswitchd leaves its socket file behind with nobody listening.
	stale := filepath.Join(t.TempDir(), "stale.ctl")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := VswitchdVersion(ctx, stale); err == nil || !strings.Contains(err.Error(), "stale.ctl") {
		t.Errorf("stale socket: %v, want an error naming it", err)
	}

	// A hung one accepts and never answers: the caller's deadline ends the wait.
	hung := filepath.Join(t.TempDir(), "hung.ctl")
	hl, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	go func() {
		if c, err := hl.Accept(); err == nil {
			defer c.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := VswitchdVersion(short, hung); err == nil {
		t.Error("a hung ovs-vswitchd answered")
	} else if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the hung probe took %s despite a 300 ms deadline", d)
	}
}

// TestVswitchdCtlPath: the socket is found from the pidfile as ovs-appctl -t ovs-vswitchd
// finds it; a missing or garbled pidfile is a clear error.
func TestVswitchdCtlPath(t *testing.T) {
	dir := t.TempDir()
	if _, err := VswitchdCtlPath(dir); err == nil || !strings.Contains(err.Error(), "is ovs-vswitchd running?") {
		t.Errorf("no pidfile: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte("4242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := VswitchdCtlPath(dir); err != nil || got != filepath.Join(dir, "ovs-vswitchd.4242.ctl") {
		t.Errorf("VswitchdCtlPath = %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VswitchdCtlPath(dir); err == nil || !strings.Contains(err.Error(), "not a pid") {
		t.Errorf("garbled pidfile: %v", err)
	}
}

// TestWaitApplied: with ovs-vswitchd running, WaitApplied returns once cur_cfg has caught up
// with the next_cfg it set; with none, it waits until the caller's deadline and says so.
func TestWaitApplied(t *testing.T) {
	srv, c := startDB(t)
	ctx := testCtx(t)
	srv.Vsctl("--no-wait", "init")
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := c.WaitApplied(short); err == nil || !strings.Contains(err.Error(), "has not applied configuration 1") {
		t.Errorf("WaitApplied without ovs-vswitchd: %v", err)
	}
	srv.StartSwitch(t)
	for i := 0; i < 3; i++ {
		if err := c.WaitApplied(ctx); err != nil {
			t.Fatalf("WaitApplied #%d: %v", i, err)
		}
		next, cur := get(t, srv, "Open_vSwitch", ".", "next_cfg"), get(t, srv, "Open_vSwitch", ".", "cur_cfg")
		if want := strconv.Itoa(i + 2); next != want || cur != next {
			t.Errorf("after WaitApplied #%d: next_cfg %s cur_cfg %s, want both %s", i, next, cur, want)
		}
	}
}
