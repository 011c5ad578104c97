package db

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file is the CockroachDB-only layer. Nothing here runs on PostgreSQL.

// MultiRegion describes how the database spans regions on CockroachDB.
type MultiRegion struct {
	Database      string   // database name
	PrimaryRegion string   // e.g. "eu-west-1"
	Regions       []string // other regions; the primary may be repeated
	// SurviveRegion selects SURVIVE REGION FAILURE (needs ≥ 3 regions);
	// otherwise SURVIVE ZONE FAILURE.
	SurviveRegion bool
}

// PlayerHomedTables are REGIONAL BY ROW: each row lives in the region of the
// gateway that wrote it (the player's home), with the hidden crdb_region column.
var PlayerHomedTables = []string{
	"players", "auth_identities", "refresh_token_families", "refresh_tokens",
	"inventory_items", "wallet_balances", "transactions", "game_sessions",
	"game_session_players", "leaderboard_records", "game_event_log",
	"applied_events", "achievement_progress", "player_storage", "player_flags",
	"telemetry_dead_letter",
	// Operator tables: a role row lives with its player; an audit row in
	// the region of the operator who acted, so the log stays writable
	// while another region is down (the time a failover is audited).
	"player_roles", "ops_audit", "flag_reviews",
}

// GlobalTables are read everywhere and written rarely: GLOBAL locality.
var GlobalTables = []string{"item_templates", "item_prices", "signing_keys", "leaderboard_seasons", "catalog_version"}

// DDL returns the statements that make the database multi-region, in order.
func (m MultiRegion) DDL() ([]string, error) {
	if m.Database == "" || m.PrimaryRegion == "" {
		return nil, errors.New("multi-region: database and primary region required")
	}
	regions := []string{}
	seen := map[string]bool{m.PrimaryRegion: true}
	for _, r := range m.Regions {
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		regions = append(regions, r)
	}
	if m.SurviveRegion && len(regions)+1 < 3 {
		return nil, fmt.Errorf("multi-region: SURVIVE REGION FAILURE needs at least 3 regions, have %d", len(regions)+1)
	}
	db := pgx.Identifier{m.Database}.Sanitize()
	stmts := []string{
		fmt.Sprintf("ALTER DATABASE %s SET PRIMARY REGION %s", db, quoteRegion(m.PrimaryRegion)),
	}
	for _, r := range regions {
		stmts = append(stmts, fmt.Sprintf("ALTER DATABASE %s ADD REGION IF NOT EXISTS %s", db, quoteRegion(r)))
	}
	if m.SurviveRegion {
		stmts = append(stmts, fmt.Sprintf("ALTER DATABASE %s SURVIVE REGION FAILURE", db))
	} else {
		stmts = append(stmts, fmt.Sprintf("ALTER DATABASE %s SURVIVE ZONE FAILURE", db))
	}
	for _, t := range PlayerHomedTables {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s SET LOCALITY REGIONAL BY ROW", pgx.Identifier{t}.Sanitize()))
	}
	for _, t := range GlobalTables {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s SET LOCALITY GLOBAL", pgx.Identifier{t}.Sanitize()))
	}
	return stmts, nil
}

func quoteRegion(r string) string { return `"` + strings.ReplaceAll(r, `"`, `""`) + `"` }

// ApplyMultiRegion runs m.DDL when, and only when, the server is CockroachDB.
// It reports whether anything ran.
func ApplyMultiRegion(ctx context.Context, pool *pgxpool.Pool, m MultiRegion) (bool, error) {
	engine, err := DetectEngine(ctx, pool)
	if err != nil {
		return false, err
	}
	if engine != CockroachDB {
		return false, nil
	}
	stmts, err := m.DDL()
	if err != nil {
		return false, err
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			return false, fmt.Errorf("multi-region: %s: %w", s, err)
		}
	}
	return true, nil
}
