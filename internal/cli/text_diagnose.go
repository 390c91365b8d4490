package cli

import (
	"fmt"
	"io"
	"time"
)

// WriteDiagnose prints r for a person, one fact a line, most telling first.
func WriteDiagnose(w io.Writer, r DiagnoseReport, color bool, now time.Time) {
	p := painter(color)
	line := func(label, value string) {
		if label != "" {
			label += ":"
		}
		fmt.Fprintf(w, "%-16s %s\n", label, value)
	}
	switch {
	case r.SubnetFound:
		fmt.Fprintf(w, "Node %s: subnet %s, gateway %s, node IP %s\n", r.Node, r.CIDR, r.Gateway, r.NodeIP)
	case r.NodeFound:
		fmt.Fprintf(w, "Node %s: %s (the node does not match spec.nodeSelector, has no InternalIP yet, or the operator is not running)\n",
			r.Node, p.paint(bad, "no NodeSubnet"))
	default:
		fmt.Fprintf(w, "Node %s: %s\n", r.Node, p.paint(bad, "neither a Node nor a NodeSubnet of that name"))
	}

	if r.Ready == nil {
		line("Ready", p.paint(warn, "not reported")+" (the agent has not written its status)")
	} else {
		line("Ready", p.paint(readyColor(r.Ready.Status, r.Ready.Reason), r.Ready.Status)+" "+r.Ready.Reason+
			" (since "+since(r.Ready.LastTransitionTime, now)+")")
		line("", oneLine(r.Ready.Message))
	}
	line("ovsdb-server", livenessText(p, r.OVSDB))
	line("ovs-vswitchd", livenessText(p, r.Vswitchd))
	if c := r.NodeIPConflict; c != nil && c.Status == "True" {
		line("NodeIPConflict", p.paint(bad, c.Reason)+": "+c.Message)
	} else {
		line("NodeIPConflict", "none")
	}
	line("MTU", mtuLine(r.MTU))
	line("Heartbeat", heartbeatLine(p, r.Heartbeat, now))
	t := r.Tunnels
	line("Tunnels", fmt.Sprintf("%d ports; desired %d, live %d, forwarding %d, blocked %d, converging %d, missing %d, skipped %d; BFD up %d, down %d",
		r.TunnelCount, t.Desired, t.Live, t.Forwarding, t.Blocked, t.Converging, t.Missing, t.Skipped, t.Up, t.Down))

	fmt.Fprintln(w, "Unhealthy peers (this node's view):")
	if len(r.UnhealthyPeers) == 0 {
		fmt.Fprintln(w, "  none")
	}
	rows := [][]cell{}
	for _, u := range r.UnhealthyPeers {
		rows = append(rows, []cell{{u.NodeName, ""}, {u.NodeIP, ""}, {u.Port, ""}, {or(u.Reason, string(u.State)), bad}, {oneLine(u.Message), ""}})
	}
	writeTable(w, p, "  ", rows)
	fmt.Fprintln(w, "Seen from peers:")
	if len(r.SeenByPeers) == 0 {
		fmt.Fprintln(w, "  no peer reports a problem with its tunnel to this node")
	}
	rows = rows[:0]
	for _, s := range r.SeenByPeers {
		rows = append(rows, []cell{{s.Node, ""}, {s.Reason, bad}, {oneLine(s.Message), ""}})
	}
	writeTable(w, p, "  ", rows)

	fmt.Fprintln(w, "Agent pod:")
	if len(r.AgentPods) == 0 {
		fmt.Fprintln(w, "  none found on this node")
	}
	for _, pod := range r.AgentPods {
		ready := p.paint(good, "ready")
		if !pod.Ready {
			ready = p.paint(bad, "not ready")
		}
		fmt.Fprintf(w, "  %s  %s, %s, %d restarts\n", pod.Name, pod.Phase, ready, pod.Restarts)
		if pod.LastTermination != "" {
			fmt.Fprintf(w, "    last termination: %s\n", pod.LastTermination)
		}
	}

	fmt.Fprintln(w, "Recent events (Node and NodeSubnet):")
	if len(r.Events) == 0 {
		fmt.Fprintln(w, "  none")
	}
	rows = rows[:0]
	for _, e := range r.Events {
		color := ""
		if e.Type == "Warning" {
			color = bad
		}
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf("x%d", e.Count)
		}
		rows = append(rows, []cell{{since(e.Time, now), dim}, {e.Type, color}, {e.Reason, ""}, {e.Object, ""},
			{e.Reporter, ""}, {count, ""}, {oneLine(e.Note), ""}})
	}
	writeTable(w, p, "  ", rows)
	line("Drift", r.Drift)
	writeUnreadable(w, p, r.Unreadable)
}

func livenessText(p painter, l Liveness) string {
	color := map[string]string{"ok": good, "unknown": warn}[l.State]
	if color == "" {
		color = bad
	}
	return p.paint(color, l.State) + " — " + oneLine(l.Detail)
}

func mtuLine(m MTUInfo) string {
	if m.InUse == 0 {
		return "not reported (" + m.Note + ")"
	}
	if m.TunnelType == "" {
		return fmt.Sprintf("%d in use (%s)", m.InUse, m.Note)
	}
	return fmt.Sprintf("%d in use, %s overhead %d bytes; %s", m.InUse, m.TunnelType, m.Overhead, m.Note)
}

func heartbeatLine(p painter, hb Heartbeat, now time.Time) string {
	switch hb.State {
	case HeartbeatLive:
		return fmt.Sprintf("%s, renewed %s (expires in %s)", p.paint(good, "live"), ago(*hb.RenewTime, now),
			hb.ExpiresAt.Sub(now).Round(time.Second))
	case HeartbeatExpired:
		if hb.RenewTime == nil {
			return p.paint(bad, "expired") + ": the Lease was never renewed"
		}
		return fmt.Sprintf("%s %s (last renewed %s): the operator counts this node as not reporting",
			p.paint(bad, "expired"), ago(*hb.ExpiresAt, now), ago(*hb.RenewTime, now))
	case HeartbeatNone:
		return p.paint(warn, "no Lease") + " (the agent has not started, or predates heartbeats)"
	}
	return p.paint(warn, "unknown") + " (the Lease could not be read, see below)"
}
