// Package telemetry owns game telemetry end to end.
//
// At each cell, IntakeHandler serves POST /game/telemetry: an authenticated
// player posts up to 100 events; they are validated (type, timestamp not
// in the future beyond a small skew, not too old, size), rate limited per
// player, given UUID event ids and published as one events.TelemetryBatch to
// the cell's JetStream stream (events.TelemetryStream(cell), placed in the
// cell's cluster). The request is answered 202 only after JetStream stored
// the batch.
//
// In the global layer, Telemetry sources every cell's telemetry stream into
// one stream in the "global" cluster and a durable batch sink writes
// game_event_log rows (multi-row INSERT … ON CONFLICT (id) DO NOTHING: a
// redelivered event is written once), runs the anomaly rules in the same
// transaction (flags in player_flags, one per player, rule and minute) and
// acks after the commit. GET /admin/flags lists flags to the configured
// admin players.
package telemetry
