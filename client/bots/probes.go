package bots

import "time"

// probeSummary aggregates the bots' beacon probes per cell and counts
// where they joined.
func probeSummary(results []result) (map[string]Percentiles, map[string]int) {
	samples := map[string][]time.Duration{}
	cells := map[string]int{}
	for _, r := range results {
		for id, ms := range r.probes {
			samples[id] = append(samples[id], time.Duration(ms)*time.Millisecond)
		}
		if r.cell != "" {
			cells[r.cell]++
		}
	}
	out := make(map[string]Percentiles, len(samples))
	for id, d := range samples {
		out[id] = percentiles(d)
	}
	return out, cells
}
