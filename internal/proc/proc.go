// Package proc runs the long-lived child processes of the test harness, the demo and the
// benchmarks (ovsdb-server, ovs-vswitchd, agents, the operator, iperf3, ping): each in its
// own process group, optionally inside a network namespace, with its output in a log file,
// and killed by the kernel if its parent dies (Pdeathsig), so a crashed test run leaves no
// daemons behind. The product binaries never use it: they do not exec anything.
package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a running (or ended) child with its output in Log.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts argv with env added to this process's environment, inside network
// namespace ns when ns is not empty (through `ip netns exec`, which execs the command, so
// the pid is the command's own). Its stdout and stderr go to dir/name.log.
func Start(dir, name, ns string, env []string, argv ...string) (*Process, error) {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Own process group, and die with the parent even if it is killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pause stops the process group with SIGSTOP: a hung process, whose sockets stay open and
// accept connections but never answer. Resume continues it; SIGKILL (Kill, Stop's
// fallback) ends a paused process too, so cleanup works either way.
func (p *Process) Pause() {
	if p != nil && !p.Exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGSTOP)
	}
}

// Resume continues a paused process group (SIGCONT).
func (p *Process) Resume() {
	if p != nil && !p.Exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
	}
}

// Stop sends SIGTERM to the process group, SIGKILL after grace, and waits.
func (p *Process) Stop(grace time.Duration) { p.signal(syscall.SIGTERM, grace) }

// Interrupt sends SIGINT to the process group, as Ctrl-C does (ping then prints its
// summary), SIGKILL after grace, and waits.
func (p *Process) Interrupt(grace time.Duration) { p.signal(syscall.SIGINT, grace) }

func (p *Process) signal(sig syscall.Signal, grace time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill sends SIGKILL to the process group and waits: a crash, not a shutdown.
func (p *Process) Kill() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Output waits for the process to end, at most timeout (then kills it and says so), and
// returns its log.
func (p *Process) Output(timeout time.Duration) (string, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		b, _ := os.ReadFile(p.Log)
		return string(b), fmt.Errorf("%s did not finish within %s", p.Name, timeout)
	}
	b, err := os.ReadFile(p.Log)
	return string(b), err
}

// Tail is the last n lines of the log, for error messages.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	return LastLines(string(b), n)
}

// LastLines is the last n lines of s, for error messages that quote a long output.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFor polls cond every interval until it is true, ctx ends or timeout passes.
func WaitFor(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
