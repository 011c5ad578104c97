// Package telemetry is the global side of game telemetry. Cells accept
// events (cell/telemetry) into their own JetStream streams.
//
// In the global layer, Telemetry sources every cell's telemetry stream into
// one stream in the "global" cluster and a durable batch sink writes
// game_event_log rows (multi-row INSERT … ON CONFLICT (id) DO NOTHING: a
// redelivered event is written once), runs the anomaly rules in the same
// transaction (flags in player_flags, one per player, rule and minute) and
// acks after the commit. An event the database refuses (SQLSTATE class 22,
// 23 or 54: data it can never store, such as \u0000 in JSONB) is isolated by
// splitting the batch until it stands alone, and stored in
// telemetry_dead_letter with the reason; the rest of the batch commits, so
// one bad event never stops telemetry for everyone. Any other database
// error redelivers the whole batch. GET /admin/flags lists flags to the configured
// admin players.
package telemetry
