// Package events owns the contracts that cross package boundaries over NATS:
// subject names, JetStream stream names and the JSON payloads published on
// them (match results, DGS lifecycle, session events, telemetry, scores).
// Domain packages import it instead of each other.
package events
