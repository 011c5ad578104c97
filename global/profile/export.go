package profile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Export is everything stored about one player (GDPR right of access).
// Sections other than Player are rows as the database holds them (SELECT *
// where the whole row is the player's, so columns added later are
// exported too); secrets that are not the player's data (refresh-token
// hashes) are left out.
type Export struct {
	ExportedAt           time.Time        `json:"exported_at"`
	Player               ExportedPlayer   `json:"player"`
	Identities           []map[string]any `json:"identities"`
	RefreshTokenFamilies []map[string]any `json:"refresh_token_families"`
	WalletBalances       []map[string]any `json:"wallet_balances"`
	InventoryItems       []map[string]any `json:"inventory_items"`
	Transactions         []map[string]any `json:"transactions"`
	GameSessions         []map[string]any `json:"game_sessions"`
	LeaderboardRecords   []map[string]any `json:"leaderboard_records"`
	GameEvents           []map[string]any `json:"game_event_log"`
	// PlayerStorage is the player's key/value storage (values as written,
	// base64); TelemetryDeadLetters are their telemetry events the
	// database refused (raw as received, base64).
	PlayerStorage        []map[string]any `json:"player_storage"`
	TelemetryDeadLetters []map[string]any `json:"telemetry_dead_letter"`
	// OtherTables holds every other table with a player_id column (found
	// in information_schema at export time), so data added by later
	// migrations is exported without a change here.
	OtherTables map[string][]map[string]any `json:"other_tables"`
}

// ExportedPlayer is the players row with the email decrypted.
type ExportedPlayer struct {
	ID              uuid.UUID  `json:"id"`
	Username        *string    `json:"username"`
	Email           *string    `json:"email"`
	Level           int        `json:"level"`
	XP              int64      `json:"xp"`
	EloRating       int        `json:"elo_rating"`
	HomeRegion      string     `json:"home_region"`
	PublicInventory bool       `json:"public_inventory"`
	CreatedAt       time.Time  `json:"created_at"`
	LastLoginAt     *time.Time `json:"last_login_at"`
	ErasedAt        *time.Time `json:"erased_at"`
}

// exportSections are read in one transaction so the export is a snapshot.
var exportSections = []struct {
	name string
	sql  string
}{
	{"identities", `SELECT issuer, subject, provider, created_at FROM auth_identities WHERE player_id = $1 ORDER BY created_at`},
	{"refresh_token_families", `SELECT id, generation, created_at, expires_at, revoked_at, revoke_reason
		FROM refresh_token_families WHERE player_id = $1 ORDER BY created_at`},
	{"wallet_balances", `SELECT * FROM wallet_balances WHERE player_id = $1 ORDER BY currency`},
	{"inventory_items", `SELECT * FROM inventory_items WHERE player_id = $1 ORDER BY created_at, id`},
	{"transactions", `SELECT * FROM transactions WHERE player_id = $1 ORDER BY created_at, id`},
	{"game_sessions", `SELECT sp.session_id, sp.team, sp.score, s.game_mode, s.region, s.status, s.started_at, s.ended_at, s.result
		FROM game_session_players sp JOIN game_sessions s ON s.id = sp.session_id
		WHERE sp.player_id = $1 ORDER BY s.started_at, sp.session_id`},
	{"leaderboard_records", `SELECT * FROM leaderboard_records WHERE player_id = $1 ORDER BY leaderboard_id, season`},
	{"game_event_log", `SELECT * FROM game_event_log WHERE player_id = $1 ORDER BY occurred_at, id`},
	{"player_storage", `SELECT * FROM player_storage WHERE player_id = $1 ORDER BY storage_key`},
	{"telemetry_dead_letter", `SELECT * FROM telemetry_dead_letter WHERE player_id = $1 ORDER BY dead_at, id`},
}

// Export gathers everything stored about a player (erased or not).
func (p *Profiles) Export(ctx context.Context, id uuid.UUID) (Export, error) {
	var ex Export
	err := db.RunTx(ctx, p.pool, func(ctx context.Context, tx pgx.Tx) error {
		ex = Export{ExportedAt: p.now().UTC()}
		pl := &ex.Player
		var emailEnc []byte
		err := tx.QueryRow(ctx, `SELECT id, username, email_enc, level, xp, elo_rating, home_region, public_inventory,
			created_at, last_login_at, erased_at FROM players WHERE id = $1`, id).Scan(
			&pl.ID, &pl.Username, &emailEnc, &pl.Level, &pl.XP, &pl.EloRating, &pl.HomeRegion, &pl.PublicInventory,
			&pl.CreatedAt, &pl.LastLoginAt, &pl.ErasedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("export player: %w", err)
		}
		if emailEnc != nil {
			email, err := p.sealer.Open(emailEnc, auth.EmailAAD(id))
			if err != nil {
				return fmt.Errorf("export player: email: %w", err)
			}
			s := string(email)
			pl.Email = &s
		}
		out := map[string]*[]map[string]any{
			"identities": &ex.Identities, "refresh_token_families": &ex.RefreshTokenFamilies,
			"wallet_balances": &ex.WalletBalances, "inventory_items": &ex.InventoryItems,
			"transactions": &ex.Transactions, "game_sessions": &ex.GameSessions,
			"leaderboard_records": &ex.LeaderboardRecords, "game_event_log": &ex.GameEvents,
			"player_storage": &ex.PlayerStorage, "telemetry_dead_letter": &ex.TelemetryDeadLetters,
		}
		for _, s := range exportSections {
			rows, err := queryMaps(ctx, tx, s.sql, id)
			if err != nil {
				return fmt.Errorf("export %s: %w", s.name, err)
			}
			*out[s.name] = rows
		}
		return p.exportOtherTables(ctx, tx, id, &ex)
	})
	return ex, err
}

// coveredTables are exported by exportSections (or hold secrets).
var coveredTables = map[string]bool{
	"players": true, "auth_identities": true, "refresh_token_families": true, "refresh_tokens": true,
	"wallet_balances": true, "inventory_items": true, "transactions": true, "game_session_players": true,
	"leaderboard_records": true, "game_event_log": true, "player_storage": true, "telemetry_dead_letter": true,
}

func (p *Profiles) exportOtherTables(ctx context.Context, tx pgx.Tx, id uuid.UUID, ex *Export) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT table_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name = 'player_id' ORDER BY table_name`)
	if err != nil {
		return fmt.Errorf("export: list tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("export: list tables: %w", err)
	}
	ex.OtherTables = map[string][]map[string]any{}
	for _, t := range tables {
		if coveredTables[t] {
			continue
		}
		got, err := queryMaps(ctx, tx, "SELECT * FROM "+pgx.Identifier{t}.Sanitize()+" WHERE player_id = $1", id)
		if err != nil {
			return fmt.Errorf("export %s: %w", t, err)
		}
		ex.OtherTables[t] = got
	}
	return nil
}

// queryMaps returns rows as column → value maps, UUIDs as strings, JSONB
// decoded, never nil.
func queryMaps(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]map[string]any, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []map[string]any{}
	fields := rows.FieldDescriptions()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(vals))
		for i, v := range vals {
			if u, ok := v.([16]byte); ok {
				v = uuid.UUID(u).String()
			}
			m[fields[i].Name] = v
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
