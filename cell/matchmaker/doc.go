// Package matchmaker owns matchmaking tickets and pools of one cell.
//
// Tickets and pools live in the cell's Redis, so a restart of a cell process
// loses nothing: a ticket is a hash, a pool is a sorted set of compact ticket
// entries scored by an enqueue sequence number. Every state change of a
// ticket (join, claim into a match, requeue, ready, cancel, expiry) is one
// Lua script, so a ticket is claimed by at most one match and a player holds
// at most one active ticket, under any concurrency and across processes.
//
// One Matchmaker per pool is active at a time: each process competes for a
// Redis lease per game mode (SET NX PX, renewed every tick); the holder keeps
// an in-memory mirror of the pool (loaded in full on takeover, then read
// incrementally by sequence number) and forms matches on each tick. A second
// process takes over when the lease lapses.
//
// A claimed ticket is also indexed by claim time; a process that dies
// between claiming a match and marking it ready (MarkReady, all or nothing)
// leaves its tickets matched, and the Janitor puts them back in the queue
// after JanitorConfig.Deadline with RequeueReason "match_abandoned", which
// the cell API shows. A late MarkReady for requeued tickets fails with
// ErrClaimLost, so the cell gives the match's server back.
//
// Form is the pure matching function: tickets sorted by rating, each
// ticket's skill window widening linearly with its queue time, parties kept
// whole on one team, teams balanced by rating sum, reported latency checked.
//
// All keys of a cell share the hash tag {cell id}, so the scripts stay
// single-slot should the cell's Redis ever be a cluster.
package matchmaker
