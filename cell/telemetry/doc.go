// Package telemetry is the cell's telemetry intake: POST /game/telemetry,
// authenticated, size- and rate-limited and validated, publishing each
// accepted batch to the cell's JetStream telemetry stream (placed in the
// cell's own cluster). The global layer sources those streams into its
// sink (global/telemetry); nothing here touches the database.
package telemetry
