package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// cpuSnapshot is the CPU time (user + system, seconds) of this process and of every other
// process by command name, read from /proc: what the IPAM benchmark reports per side (only
// one side's API server and controller run at a time).
func cpuSnapshot() map[string]float64 {
	out := map[string]float64{}
	const hz = 100 // USER_HZ, the unit of utime/stime on Linux
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces, so split after ')'.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out[s[open+1:end]] += (ut + st) / hz
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out["(bench: creators, watch)"] = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	return out
}

// cpuSpent formats the CPU time spent between two snapshots by the named commands.
func cpuSpent(before, after map[string]float64, names ...string) string {
	var parts []string
	for _, n := range names {
		if d := after[n] - before[n]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f s", n, d))
		}
	}
	return strings.Join(parts, ", ")
}
