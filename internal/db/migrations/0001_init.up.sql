-- cellgrid schema, version 1. Runs unchanged on PostgreSQL 15 and CockroachDB.
-- Money and counters are BIGINT minor units. Keys are UUIDs.

CREATE TABLE IF NOT EXISTS players (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    username      TEXT,
    email_enc     BYTEA,
    level         INT NOT NULL DEFAULT 1,
    xp            BIGINT NOT NULL DEFAULT 0,
    elo_rating    INT NOT NULL DEFAULT 1000,
    home_region   TEXT NOT NULL DEFAULT '',
    public_inventory BOOLEAN NOT NULL DEFAULT false,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at TIMESTAMPTZ,
    erased_at     TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS players_username_key ON players (username);

CREATE TABLE IF NOT EXISTS auth_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    provider   TEXT NOT NULL,
    player_id  UUID NOT NULL REFERENCES players (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS auth_identities_player_idx ON auth_identities (player_id);

CREATE TABLE IF NOT EXISTS refresh_token_families (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    player_id    UUID NOT NULL REFERENCES players (id),
    current_hash BYTEA NOT NULL,
    generation   INT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    revoke_reason TEXT
);
CREATE INDEX IF NOT EXISTS refresh_token_families_player_idx ON refresh_token_families (player_id);

-- Every refresh token ever issued, so reuse of a rotated one is recognised.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    family_id  UUID NOT NULL REFERENCES refresh_token_families (id),
    issued_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Access-token signing keys, shared by every global instance.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    active_from TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at  TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS item_templates (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    max_stack   INT NOT NULL DEFAULT 1 CHECK (max_stack >= 1),
    tradable    BOOLEAN NOT NULL DEFAULT false,
    consumable  BOOLEAN NOT NULL DEFAULT false,
    equippable  BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS item_prices (
    item_template_id TEXT NOT NULL REFERENCES item_templates (id),
    currency         TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (item_template_id, currency)
);

CREATE TABLE IF NOT EXISTS inventory_items (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    player_id        UUID NOT NULL REFERENCES players (id),
    item_template_id TEXT NOT NULL REFERENCES item_templates (id),
    quantity         BIGINT NOT NULL CHECK (quantity >= 0),
    equipped         BOOLEAN NOT NULL DEFAULT false,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS inventory_items_player_template_key ON inventory_items (player_id, item_template_id);

CREATE TABLE IF NOT EXISTS wallet_balances (
    player_id  UUID NOT NULL REFERENCES players (id),
    currency   TEXT NOT NULL,
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, currency)
);

-- The ledger. Every balance change is one row; balance = SUM(amount).
-- player_id stays after erasure (anonymised: the player row loses its PII).
CREATE TABLE IF NOT EXISTS transactions (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    player_id        UUID NOT NULL,
    kind             TEXT NOT NULL,
    currency         TEXT NOT NULL,
    amount           BIGINT NOT NULL,
    item_template_id TEXT,
    quantity         BIGINT NOT NULL DEFAULT 0,
    idempotency_key  TEXT NOT NULL,
    reference        TEXT NOT NULL DEFAULT '',
    result           JSONB,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS transactions_idempotency_key ON transactions (player_id, idempotency_key, currency);
CREATE INDEX IF NOT EXISTS transactions_player_time_idx ON transactions (player_id, created_at);

CREATE TABLE IF NOT EXISTS game_sessions (
    id         UUID PRIMARY KEY,
    game_mode  TEXT NOT NULL,
    region     TEXT NOT NULL,
    status     TEXT NOT NULL,
    dgs_id     TEXT NOT NULL DEFAULT '',
    dgs_addr   TEXT NOT NULL DEFAULT '',
    dgs_port   INT NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at   TIMESTAMPTZ,
    result     JSONB
);
CREATE INDEX IF NOT EXISTS game_sessions_region_status_idx ON game_sessions (region, status);

CREATE TABLE IF NOT EXISTS game_session_players (
    session_id UUID NOT NULL REFERENCES game_sessions (id),
    player_id  UUID NOT NULL,
    team       INT NOT NULL DEFAULT 0,
    score      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, player_id)
);
CREATE INDEX IF NOT EXISTS game_session_players_player_idx ON game_session_players (player_id);

CREATE TABLE IF NOT EXISTS leaderboard_records (
    leaderboard_id TEXT NOT NULL,
    season         INT NOT NULL DEFAULT 0,
    player_id      UUID NOT NULL,
    region         TEXT NOT NULL DEFAULT '',
    score          BIGINT NOT NULL,
    num_scores     INT NOT NULL DEFAULT 1,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (leaderboard_id, season, player_id)
);
CREATE INDEX IF NOT EXISTS leaderboard_records_rank_idx ON leaderboard_records (leaderboard_id, season, score DESC);

-- Exactly-once application of events consumed from JetStream.
CREATE TABLE IF NOT EXISTS applied_events (
    consumer   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE IF NOT EXISTS game_event_log (
    id          UUID PRIMARY KEY,
    player_id   UUID,
    session_id  UUID,
    cell        TEXT NOT NULL DEFAULT '',
    event_type  TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    payload     JSONB,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS game_event_log_player_time_idx ON game_event_log (player_id, occurred_at);
CREATE INDEX IF NOT EXISTS game_event_log_type_time_idx ON game_event_log (event_type, occurred_at);
