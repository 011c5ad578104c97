// Package achievement owns achievements and per-player key/value storage.
//
// Achievements are defined in config: counters ("win 10 duels": progress
// adds up across matches) and one-shot unlocks ("score 50 in one match").
// global/results advances them with Advance inside its exactly-once
// transaction, so a redelivered match never counts twice. An unlock is
// recorded once, with its time.
//
// Storage is a small JSON document per (player, key) with an optimistic
// version: GET returns it with ETag = version; PUT needs If-Match: <version>
// to update or If-None-Match: * to create (428 without either, 412 when the
// precondition fails); values over the size limit are 413.
package achievement
