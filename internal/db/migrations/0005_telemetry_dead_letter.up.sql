-- cellgrid schema, version 5: telemetry dead letters. The telemetry sink
-- moves every event the database refuses (a JSONB payload PostgreSQL cannot
-- store, a text field with a NUL byte, ...) here, with the reason, so one bad
-- event never holds back the rest of its batch. raw is the event as the sink
-- received it (JSON bytes, BYTEA so that nothing in it can be refused again);
-- the text columns hold sanitised copies for querying. id is the event id
-- when it is a UUID, otherwise a name-based UUID of raw: a redelivered dead
-- letter is stored once. Runs unchanged on PostgreSQL 15 and CockroachDB.
CREATE TABLE IF NOT EXISTS telemetry_dead_letter (
    id         UUID PRIMARY KEY,
    player_id  UUID,
    cell       TEXT NOT NULL DEFAULT '',
    event_type TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL,
    raw        BYTEA NOT NULL,
    dead_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS telemetry_dead_letter_time_idx ON telemetry_dead_letter (dead_at);
