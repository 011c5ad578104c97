ALTER TABLE item_templates DROP COLUMN IF EXISTS ops_edited;
DROP TABLE IF EXISTS catalog_version;
DROP TABLE IF EXISTS flag_reviews;
DROP INDEX IF EXISTS ops_audit_at_idx;
DROP TABLE IF EXISTS ops_audit;
DROP TABLE IF EXISTS player_roles;
