package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// vswitchSchema is the Debian package's schema, the one a real node runs.
const vswitchSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// OVSDB is a private ovsdb-server with its own database, socket and logs under dir; nothing
// touches the system's /var/run/openvswitch.
type OVSDB struct {
	Dir, DB, Sock string
	Proc          *Proc
}

// StartOVSDB creates a database in a new directory under e.Dir and starts ovsdb-server on it
// (inside netns ns when not empty), stopped at Close.
func (e *Env) StartOVSDB(ctx context.Context, name, ns string) (*OVSDB, error) {
	if err := RequireTools("ovsdb-tool", "ovsdb-server", "ovs-vsctl"); err != nil {
		return nil, err
	}
	dir := filepath.Join(e.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &OVSDB{Dir: dir, DB: filepath.Join(dir, "conf.db"), Sock: filepath.Join(dir, "db.sock")}
	if _, err := run(ctx, "ovsdb-tool", "create", s.DB, vswitchSchema); err != nil {
		return nil, err
	}
	var err error
	s.Proc, err = e.Start(name+"-ovsdb-server", ns, s.env(), "ovsdb-server", s.DB,
		"--remote=punix:"+s.Sock, "--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"), "--no-chdir",
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 10*time.Second, 20*time.Millisecond, func() bool {
		c, err := net.Dial("unix", s.Sock)
		if err == nil {
			c.Close()
		}
		return err == nil || s.Proc.Exited()
	}); err != nil || s.Proc.Exited() {
		return nil, fmt.Errorf("ovsdb-server did not come up (%v): %s", err, s.Proc.Tail(5))
	}
	if _, err := s.Vsctl(ctx, "init"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *OVSDB) env() []string {
	return []string{"OVS_RUNDIR=" + s.Dir, "OVS_DBDIR=" + s.Dir, "OVS_LOGDIR=" + s.Dir}
}

// Vsctl runs `ovs-vsctl --db=unix:<sock> --no-wait args...`: only the database is
// programmed (no ovs-vswitchd is waited for).
func (s *OVSDB) Vsctl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ovs-vsctl", append([]string{"--db=unix:" + s.Sock, "--no-wait", "--timeout=60"}, args...)...)
}
