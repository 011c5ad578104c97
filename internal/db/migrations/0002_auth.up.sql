-- cellgrid schema, version 2: auth. Runs unchanged on PostgreSQL 15 and CockroachDB.

-- Signing keys are numbered. Every global instance that finds no key (first
-- start) or a key past its lifetime inserts generation n+1 with
-- ON CONFLICT DO NOTHING, so concurrent instances agree on exactly one key
-- per generation.
ALTER TABLE signing_keys ADD COLUMN IF NOT EXISTS generation BIGINT UNIQUE;

-- Usernames are unique regardless of case ("Ana" and "ana" are one name).
CREATE UNIQUE INDEX IF NOT EXISTS players_username_lower_key ON players (lower(username));
