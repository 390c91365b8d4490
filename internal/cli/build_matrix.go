package cli

import (
	"fmt"

	"github.com/ovsmesh/ovsmesh/api/v1alpha1"
)

// MatrixLimit is the most nodes a full matrix shows: beyond it a terminal line cannot hold
// a row, so only the nodes with a problem are shown.
const MatrixLimit = 30

// BuildMatrix derives the node × node tunnel matrix from the nodes' reports. The API has no
// per-pair state (a node's status must not grow with the cluster), only each node's
// unhealthy peers, so a cell is ok unless the row's node lists the column's, and "?" when
// the row's node's report cannot be trusted. The list holds the first v1alpha1.MaxUnhealthyPeers
// by name: when it is full, peers named after its last entry may be unhealthy too ("?").
func BuildMatrix(nodes []NodeRow, limit int) Matrix {
	names := make([]string, len(nodes))
	for i := range nodes {
		names[i] = nodes[i].Name
	}
	cells := make([][]string, len(nodes))
	for i := range nodes {
		cells[i] = row(&nodes[i], names)
	}
	m := Matrix{Nodes: names, Cells: cells, TotalNodes: len(nodes)}
	if len(nodes) <= limit {
		m.Summary = summary(cells)
		return m
	}
	return reduce(m)
}

func row(n *NodeRow, names []string) []string {
	bad := map[string]string{}
	last := ""
	for _, p := range n.UnhealthyPeers {
		bad[p.NodeName] = p.Reason
		last = max(last, p.NodeName)
	}
	full := len(n.UnhealthyPeers) >= v1alpha1.MaxUnhealthyPeers
	r := make([]string, len(names))
	for j, peer := range names {
		reason, listed := bad[peer]
		switch {
		case peer == n.Name:
			r[j] = CellSelf
		case !n.PeersKnown:
			r[j] = CellUnknown
		case listed && reason == "":
			r[j] = string(v1alpha1.PeerUnknown) // listed without a reason: an older agent
		case listed:
			r[j] = reason
		case full && peer > last:
			r[j] = CellUnknown
		default:
			r[j] = CellOK
		}
	}
	return r
}

// reduce keeps the rows and columns of the nodes with a problem: a row that is not all ok
// (the node reports a bad tunnel, or its report is unknown), or a column where some node
// reports a definite problem. A column of "?" alone does not count: one silent node would
// otherwise pull every node in.
func reduce(m Matrix) Matrix {
	n := len(m.Nodes)
	keep := make([]bool, n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			switch c := m.Cells[i][j]; c {
			case CellOK, CellSelf:
			case CellUnknown:
				keep[i] = true
			default:
				keep[i], keep[j] = true, true
			}
		}
	}
	var idx []int
	for i, k := range keep {
		if k {
			idx = append(idx, i)
		}
	}
	out := Matrix{Reduced: true, TotalNodes: n, Nodes: []string{}, Cells: [][]string{}}
	for _, i := range idx {
		out.Nodes = append(out.Nodes, m.Nodes[i])
		r := make([]string, 0, len(idx))
		for _, j := range idx {
			r = append(r, m.Cells[i][j])
		}
		out.Cells = append(out.Cells, r)
	}
	out.Summary = summary(m.Cells)
	if len(idx) == 0 {
		out.Summary += fmt.Sprintf("; %d nodes is more than %d, and none has a problem: matrix not shown", n, MatrixLimit)
	} else {
		out.Summary += fmt.Sprintf("; %d nodes is more than %d: showing only the %d with a problem, the other %d see each other ok",
			n, MatrixLimit, len(idx), n-len(idx))
	}
	return out
}

// summary counts the cells of the full matrix.
func summary(cells [][]string) string {
	var ok, bad, unknown int
	for _, r := range cells {
		for _, c := range r {
			switch c {
			case CellSelf:
			case CellOK:
				ok++
			case CellUnknown:
				unknown++
			default:
				bad++
			}
		}
	}
	return fmt.Sprintf("%d tunnels: %d ok, %d not ok, %d unknown", ok+bad+unknown, ok, bad, unknown)
}
