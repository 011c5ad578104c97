// Package cellsources makes the global layer consume every cell its
// topology knows: when a cell appears (its first NATS heartbeat, or the
// Consul catalog listing it) the global streams of match results and
// telemetry gain that cell's stream as a source. Adding a cell needs
// nothing central redeployed; --cells is only the initial list.
package cellsources
