package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ovsmesh/ovsmesh/internal/proc"
	"github.com/ovsmesh/ovsmesh/internal/testbed"
)

var setLogger sync.Once

// Env is one benchmark's scratch space: a per-run name prefix, a temp dir and a stack of
// cleanups run in reverse by Close (also after a failure half-way).
type Env struct {
	Prefix string    // per-run unique; starts every namespace, link and dir name
	Dir    string    // temp dir (short: unix socket paths must fit in 108 bytes)
	Log    io.Writer // progress; never nil

	mu       sync.Mutex
	cleanups []func()
	seq      int
}

// Next returns 1, 2, 3...: a suffix for names made more than once in one Env.
func (e *Env) Next() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return e.seq
}

// NewEnv makes a prefix and a temp dir under /tmp.
func NewEnv(log io.Writer) (*Env, error) {
	// envtest (IPAM, and the harness's control plane) logs through controller-runtime's
	// logger and prints a stack trace when none is set.
	setLogger.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	if log == nil {
		log = io.Discard
	}
	prefix := "ob" + testbed.RunID(3)
	dir, err := os.MkdirTemp("/tmp", prefix+"-")
	if err != nil {
		return nil, err
	}
	e := &Env{Prefix: prefix, Dir: dir, Log: log}
	e.Defer(func() { os.RemoveAll(dir) })
	return e, nil
}

// Defer registers fn to run at Close (last registered runs first).
func (e *Env) Defer(fn func()) {
	e.mu.Lock()
	e.cleanups = append(e.cleanups, fn)
	e.mu.Unlock()
}

// Close runs the cleanups. Safe to call twice.
func (e *Env) Close() {
	e.mu.Lock()
	cs := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// Logf prints one progress line.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.Log, format+"\n", args...)
}

// run executes a set-up or inspection tool and returns its stdout; the error carries stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, shortArgs(args), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func shortArgs(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 300 {
		s = s[:300] + fmt.Sprintf("... (%d args)", len(args))
	}
	return s
}

// inNS runs a command inside a named network namespace.
func inNS(ctx context.Context, ns string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// AddNetns creates a named network namespace with lo up, deleted at Close (after killing
// whatever of ours still runs inside it).
func (e *Env) AddNetns(ctx context.Context, name string) error {
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	e.Defer(func() { delNetns(name) })
	_, err := inNS(ctx, name, "ip", "link", "set", "lo", "up")
	return err
}

func delNetns(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if pids, err := run(ctx, "ip", "netns", "pids", name); err == nil {
		for _, p := range strings.Fields(pids) {
			_, _ = run(ctx, "kill", "-9", p) // only ever processes this benchmark started there
		}
	}
	_, _ = run(ctx, "ip", "netns", "del", name)
}

// Proc is a long-running child process with its output in a log file.
type Proc = proc.Process

// Start starts argv (inside netns ns when not empty) as a child in its own process group
// that dies with this process; it is stopped by PID at Close.
func (e *Env) Start(name, ns string, env []string, argv ...string) (*Proc, error) {
	p, err := proc.Start(e.Dir, name, ns, env, argv...)
	if err != nil {
		return nil, err
	}
	e.Defer(func() { p.Stop(5 * time.Second) })
	return p, nil
}

// RequireTools fails with the testbed hint when a tool is missing (never a silent skip).
func RequireTools(names ...string) error {
	var errs []error
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			errs = append(errs, fmt.Errorf("%s not found: run `make testbed`", n))
		}
	}
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("the benchmarks create network namespaces and must run as root"))
	}
	return errors.Join(errs...)
}

// waitFor polls cond every interval until it is true, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	return proc.WaitFor(ctx, timeout, interval, cond)
}
