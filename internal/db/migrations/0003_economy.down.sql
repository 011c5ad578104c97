DROP TABLE IF EXISTS player_flags;
DROP INDEX IF EXISTS leaderboard_records_region_rank_idx;
DROP TABLE IF EXISTS leaderboard_seasons;
DROP TABLE IF EXISTS player_storage;
DROP TABLE IF EXISTS achievement_progress;
