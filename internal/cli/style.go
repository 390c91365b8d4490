package cli

import (
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// Colour modes of --color.
const (
	ColorAuto   = "auto"
	ColorAlways = "always"
	ColorNever  = "never"
)

// UseColor decides whether to colour output to w: always/never as asked; auto only when w is
// a terminal, NO_COLOR (https://no-color.org) is unset and TERM is not "dumb", so that a
// pipe or a file never receives escape codes.
func UseColor(mode string, w io.Writer, getenv func(string) string) bool {
	switch mode {
	case ColorAlways:
		return true
	case ColorNever:
		return false
	}
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ANSI colours, chosen by meaning rather than hue so the renderers stay readable.
const (
	good = "32" // green
	warn = "33" // yellow
	bad  = "31" // red
	dim  = "2"
)

// painter wraps text in a colour when colour is on.
type painter bool

func (p painter) paint(code, s string) string {
	if !p || code == "" || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// cell is a table cell and its colour.
type cell struct{ text, color string }

// writeTable prints rows with columns padded to the widest cell, measured without the
// colour codes (text/tabwriter would count them), two spaces apart, the last not padded.
func writeTable(w io.Writer, p painter, indent string, rows [][]cell) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			b.WriteString(p.paint(c.color, c.text))
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		io.WriteString(w, strings.TrimRight(b.String(), " ")+"\n")
	}
}
