-- cellgrid schema, version 3: economy, achievements, player storage,
-- leaderboard seasons and anomaly flags. Runs unchanged on PostgreSQL 15 and
-- CockroachDB (UUID keys, no sequences, no triggers).

-- Achievement progress per player; unlocked_at is set once, when progress
-- first reaches the goal.
CREATE TABLE IF NOT EXISTS achievement_progress (
    player_id      UUID NOT NULL,
    achievement_id TEXT NOT NULL,
    progress       BIGINT NOT NULL DEFAULT 0 CHECK (progress >= 0),
    unlocked_at    TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, achievement_id)
);

-- Per-player key/value storage with optimistic versions (ETag = version).
CREATE TABLE IF NOT EXISTS player_storage (
    player_id  UUID NOT NULL,
    storage_key TEXT NOT NULL,
    value      BYTEA NOT NULL,
    version    BIGINT NOT NULL CHECK (version >= 1),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, storage_key)
);

-- The current season of each leaderboard. A reset bumps season with a
-- compare-and-set, so several global instances reset a board once.
CREATE TABLE IF NOT EXISTS leaderboard_seasons (
    leaderboard_id TEXT PRIMARY KEY,
    season         INT NOT NULL DEFAULT 0,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_reset_at  TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS leaderboard_records_region_rank_idx ON leaderboard_records (leaderboard_id, season, region, score DESC);

-- Players flagged by anomaly rules. One row per (player, rule, window):
-- re-running a rule over the same window never adds a second flag.
CREATE TABLE IF NOT EXISTS player_flags (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    player_id    UUID NOT NULL,
    rule         TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    observed     BIGINT NOT NULL DEFAULT 0,
    threshold    BIGINT NOT NULL DEFAULT 0,
    detail       TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS player_flags_window_key ON player_flags (player_id, rule, window_start);
CREATE INDEX IF NOT EXISTS player_flags_created_idx ON player_flags (created_at);
