// Package telemetry is the cell's telemetry intake: POST /game/telemetry,
// authenticated, size- and rate-limited and validated, publishing each
// accepted batch to the cell's JetStream telemetry stream (placed in the
// cell's own cluster). The global layer sources those streams into its
// sink (global/telemetry); nothing here touches the database.
//
// Validation refuses, with 400 and a JSON error, anything the event log
// could not store as sent: a body that is not valid UTF-8 (code
// invalid_utf8), a NUL character in any payload key or string, a payload
// nested deeper than MaxPayloadDepth or larger than MaxPayloadBytes once
// encoded (code invalid_event). The sink still dead-letters whatever the
// database refuses, so a publisher that bypasses this intake stalls no one.
package telemetry
