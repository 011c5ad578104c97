// Package results applies match results to the economy of record, exactly
// once: a durable JetStream consumer on a stream placed in the "global"
// cluster that sources every cell's match stream (events.MatchStream(cell),
// filtered to events.MatchResultFilter(cell)).
//
// For each MatchResult one db.RunTx, guarded by applied_events(consumer,
// session id), updates XP and level per player, credits currency through the
// store ledger (key "match:<session>"), advances achievements, writes
// leaderboard records and flags players whose flagged inputs exceed the
// threshold. After the commit the Redis boards are updated and the message
// is acked. A redelivery finds the applied_events row, changes nothing in the
// database and republishes the boards from the records of record.
//
// Players unknown to the players table (no row) are skipped and counted.
package results
