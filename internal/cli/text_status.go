package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// WriteStatus prints r for a person; now ages the heartbeats and conditions.
func WriteStatus(w io.Writer, r StatusReport, color bool, now time.Time) {
	p := painter(color)
	writeCluster(w, p, r.Cluster, now)
	fmt.Fprintln(w)
	if len(r.Nodes) == 0 {
		fmt.Fprintln(w, "No NodeSubnets: the operator has not allocated a subnet to any node yet.")
	} else {
		writeNodes(w, p, r.Nodes, now)
		fmt.Fprintln(w)
		writeMatrix(w, p, r.Matrix)
	}
	writeUnreadable(w, p, r.Unreadable)
}

func writeCluster(w io.Writer, p painter, c ClusterSummary, now time.Time) {
	if !c.Found {
		fmt.Fprintf(w, "NetworkCluster %s: %s\n", c.Name, p.paint(bad, "not found"))
		return
	}
	mtu := "automatic"
	if c.SpecMTU != 0 {
		mtu = fmt.Sprint(c.SpecMTU)
	}
	fmt.Fprintf(w, "NetworkCluster %s: %s tunnels, %s, cluster CIDR %s, MTU %s\n",
		c.Name, or(c.TunnelType, "GRE"), or(c.Protocol, "STP"), c.ClusterCIDR, mtu)
	ready := fmt.Sprintf("%d/%d", c.NodesReady, c.NodesTotal)
	color := good
	if c.NodesReady < c.NodesTotal {
		color = bad
	}
	fmt.Fprintf(w, "  nodes ready %s, subnets %d used, %d free\n", p.paint(color, ready), c.SubnetsUsed, c.SubnetsFree)
	rows := make([][]cell, 0, len(c.Conditions))
	for _, cond := range c.Conditions {
		rows = append(rows, []cell{{cond.Type, ""}, {cond.Status, clusterConditionColor(cond)},
			{cond.Reason, ""}, {since(cond.LastTransitionTime, now), dim}, {oneLine(cond.Message), ""}})
	}
	writeTable(w, p, "  ", rows)
}

// clusterConditionColor: Available should be True, Degraded False; Progressing is neither.
func clusterConditionColor(c Condition) string {
	healthy := map[string]string{"Available": "True", "Degraded": "False"}[c.Type]
	switch {
	case healthy == "":
		return warnIf(c.Status == "True")
	case c.Status == healthy:
		return good
	}
	return bad
}

func writeNodes(w io.Writer, p painter, nodes []NodeRow, now time.Time) {
	rows := [][]cell{{{"NODE", ""}, {"NODE IP", ""}, {"READY", ""}, {"REASON", ""}, {"MTU", ""},
		{"TUNNELS", ""}, {"LIVE", ""}, {"FWD", ""}, {"BLOCKED", ""}, {"PROBLEMS", ""}, {"HEARTBEAT", ""}}}
	for _, n := range nodes {
		t := n.Tunnels
		rows = append(rows, []cell{{n.Name, ""}, {n.NodeIP, ""}, {or(n.Ready, "-"), readyColor(n.Ready, n.Reason)},
			{or(n.Reason, "not reported"), ""}, {mtuText(n.MTU), ""}, {fmt.Sprint(n.TunnelCount), ""},
			{fmt.Sprintf("%d/%d", t.Live, t.Desired), warnIf(t.Live < t.Desired)}, {fmt.Sprint(t.Forwarding), ""},
			{fmt.Sprint(t.Blocked), ""}, problems(n), heartbeatCell(n.Heartbeat, now)})
	}
	writeTable(w, p, "", rows)
	for _, n := range nodes {
		if n.NodeIPConflict != "" {
			fmt.Fprintf(w, "%s: %s %s\n", n.Name, p.paint(bad, "NodeIPConflict:"), n.NodeIPConflict)
		}
	}
}

// readyColor: progress reasons (spanning tree converging, tunnels coming up) are yellow.
func readyColor(status, reason string) string {
	switch {
	case status == "True":
		return good
	case reason == "SpanningTreeConverging" || reason == "TunnelsNotLive":
		return warn
	}
	return bad
}

func problems(n NodeRow) cell {
	t := n.Tunnels
	var parts []string
	for _, c := range []struct {
		name string
		n    int32
	}{{"converging", t.Converging}, {"missing", t.Missing}, {"down", t.Down}, {"skipped", t.Skipped}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.name))
		}
	}
	if len(parts) == 0 {
		return cell{"-", ""}
	}
	return cell{strings.Join(parts, ", "), bad}
}

func heartbeatCell(hb Heartbeat, now time.Time) cell {
	switch hb.State {
	case HeartbeatLive:
		return cell{"renewed " + ago(*hb.RenewTime, now), ""}
	case HeartbeatExpired:
		if hb.ExpiresAt == nil {
			return cell{"expired (never renewed)", bad}
		}
		return cell{"EXPIRED " + ago(*hb.ExpiresAt, now), bad}
	case HeartbeatNone:
		return cell{"no lease", warn}
	}
	return cell{"?", warn}
}

func writeMatrix(w io.Writer, p painter, m Matrix) {
	fmt.Fprintln(w, "Tunnels (row: the node whose agent reports, column: the peer)")
	if len(m.Nodes) > 0 {
		header := []cell{{"", ""}}
		for _, n := range m.Nodes {
			header = append(header, cell{n, ""})
		}
		rows := [][]cell{header}
		for i, n := range m.Nodes {
			r := []cell{{n, ""}}
			for _, c := range m.Cells[i] {
				r = append(r, matrixCell(c))
			}
			rows = append(rows, r)
		}
		writeTable(w, p, "  ", rows)
	}
	fmt.Fprintln(w, "  "+m.Summary)
}

func matrixCell(c string) cell {
	switch c {
	case CellOK:
		return cell{c, good}
	case CellSelf:
		return cell{"—", dim}
	case CellUnknown:
		return cell{c, warn}
	}
	return cell{c, bad}
}

func writeUnreadable(w io.Writer, p painter, what []string) {
	if len(what) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, p.paint(warn, "Could not read (shown as unknown above):"))
	for _, s := range what {
		fmt.Fprintln(w, "  "+s)
	}
}

func mtuText(m int32) string {
	if m == 0 {
		return "-"
	}
	return fmt.Sprint(m)
}

func warnIf(b bool) string {
	if b {
		return warn
	}
	return ""
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

func ago(t, now time.Time) string {
	if t.After(now) {
		return "just now"
	}
	return duration.HumanDuration(now.Sub(t)) + " ago"
}

func since(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return ago(t, now)
}

// oneLine keeps a table row on one line: condition messages may hold newlines.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
