// Package leaderboard owns cross-region leaderboards: definitions from
// config (order, operator best/set/incr, cron reset, global or regional
// scope), records of record in leaderboard_records, and the live boards in
// Redis sorted sets (one global key per board and season, plus one per
// region for regional boards).
//
// Writes happen in two steps. Submit runs inside the caller's db.RunTx (the
// results consumer, guarded by applied_events) and returns the records as
// committed; Publish then copies those values into Redis. Publishing is
// idempotent (it writes values of record, with ZADD GT/LT where the operator
// makes scores monotonic), so a redelivered match may publish again safely.
//
// Redis is a cache of the database: a board key whose "built" marker is
// missing (FLUSHALL, a restarted Redis, a new season) is rebuilt from
// leaderboard_records on the next read. Reads create no key for a board
// with no records (a region or season a reader made up), and a season after
// the current one is refused (404 unknown_season), so readers cannot grow
// the Redis keyspace.
//
// A reset bumps the board's season in leaderboard_seasons (a compare-and-set
// on next_reset_at, so many global instances reset once); older seasons stay
// queryable with ?season=.
package leaderboard
