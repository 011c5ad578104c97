-- cellgrid schema, version 7: operator roles and the ops audit log. Runs
-- unchanged on PostgreSQL 15 and CockroachDB (UUID keys, no sequences, no
-- triggers).

-- Roles granted to a player by their identity provider (the OIDC claim
-- global/ops reads at login, e.g. "groups"). Roles from configuration are
-- not stored; a player without a row and without a configured role is a
-- player.
CREATE TABLE IF NOT EXISTS player_roles (
    player_id  UUID PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('support', 'admin')),
    source     TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every operator action, append-only: global/audit only ever INSERTs and
-- SELECTs here. before/after are JSON snapshots of what the action changed.
CREATE TABLE IF NOT EXISTS ops_audit (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id   UUID NOT NULL,
    actor_role TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    before     JSONB,
    after      JSONB,
    outcome    TEXT NOT NULL DEFAULT 'ok'
);
CREATE INDEX IF NOT EXISTS ops_audit_at_idx ON ops_audit (at, id);

-- An operator's verdict on an anomaly flag (player_flags): cleared (a
-- false positive) or confirmed (cheating). One current verdict per flag;
-- every change is also in ops_audit with the verdict before it.
CREATE TABLE IF NOT EXISTS flag_reviews (
    flag_id     UUID PRIMARY KEY,
    player_id   UUID NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('cleared', 'confirmed')),
    note        TEXT NOT NULL DEFAULT '',
    reviewer_id UUID NOT NULL,
    reviewed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The catalog's version: bumped by every operator edit (and by a start
-- that seeds the catalog from configuration), so clients cache GET
-- /store/items by it. One row.
CREATE TABLE IF NOT EXISTS catalog_version (
    id         INT PRIMARY KEY CHECK (id = 1),
    version    BIGINT NOT NULL CHECK (version >= 1),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- An item an operator edited keeps the edit when the global layer
-- restarts: seeding from configuration no longer overwrites it.
ALTER TABLE item_templates ADD COLUMN IF NOT EXISTS ops_edited BOOLEAN NOT NULL DEFAULT false;

-- The one write comes last: CockroachDB refuses a schema change after a
-- write in the same (implicit) transaction.
INSERT INTO catalog_version (id, version) VALUES (1, 1) ON CONFLICT (id) DO NOTHING;
