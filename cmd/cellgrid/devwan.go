package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/cellgrid/cellgrid/client/bots"
	"github.com/cellgrid/cellgrid/devstack"
)

// wanLayout is the dev stack's WAN from --wan / --wan-config (nil: none).
func wanLayout(on bool, path string) (*devstack.WAN, error) {
	if path != "" {
		return devstack.LoadWAN(path)
	}
	if on {
		return devstack.DefaultWAN(), nil
	}
	return nil, nil
}

// printProbes writes each cell's beacon RTT as the bots measured it and
// how many bots joined there.
func printProbes(w io.Writer, s bots.Summary) {
	ids := make([]string, 0, len(s.ProbeRTT))
	for id := range s.ProbeRTT {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := s.ProbeRTT[id]
		fmt.Fprintf(w, "probe %-12s p50 %-10s p99 %-10s (n=%d) joined by %d\n", id, p.P50, p.P99, p.N, s.Cells[id])
	}
}
