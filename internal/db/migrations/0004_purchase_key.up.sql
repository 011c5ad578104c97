-- One purchase per (player, idempotency key), whatever its currency: the
-- ledger's unique index includes the currency (a match reward credits
-- several), so two racing first purchases with one key and different
-- currencies were kept apart only by SERIALIZABLE. The database enforces it.
CREATE UNIQUE INDEX IF NOT EXISTS transactions_purchase_key ON transactions (player_id, idempotency_key) WHERE kind = 'purchase';
