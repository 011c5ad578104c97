DROP INDEX IF EXISTS players_username_lower_key;
ALTER TABLE signing_keys DROP COLUMN IF EXISTS generation CASCADE;
