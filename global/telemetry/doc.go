// Package telemetry is the global side of game telemetry. Cells accept
// events (cell/telemetry) into their own JetStream streams.
//
// In the global layer, Telemetry sources every cell's telemetry stream into
// one stream in the "global" cluster and a durable batch sink writes
// game_event_log rows (multi-row INSERT … ON CONFLICT (id) DO NOTHING: a
// redelivered event is written once), runs the anomaly rules in the same
// transaction (flags in player_flags, one per player, rule and minute) and
// acks after the commit. GET /admin/flags lists flags to the configured
// admin players.
package telemetry
