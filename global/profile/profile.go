package profile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Config of the profile service.
type Config struct {
	// EncryptionKey is the 32-byte key auth seals emails with (the same
	// auth.Config.EncryptionKey). Required: export decrypts the email.
	EncryptionKey []byte
	// MaxBody limits request bodies. Default 4 KiB.
	MaxBody int64
}

// DefaultMaxBody is the request body limit when Config.MaxBody is 0.
const DefaultMaxBody = 4 << 10

// Deps are the services profile uses.
type Deps struct {
	DB      *pgxpool.Pool         // required
	Log     *slog.Logger          // nil: slog.Default()
	Metrics prometheus.Registerer // nil: metrics not registered
	Now     func() time.Time      // nil: time.Now
}

// Profiles is the profile service. No goroutines, no Close.
type Profiles struct {
	cfg      Config
	pool     *pgxpool.Pool
	log      *slog.Logger
	now      func() time.Time
	sealer   *auth.Sealer
	requests *prometheus.CounterVec // op, status
}

// New returns the service.
func New(cfg Config, deps Deps) (*Profiles, error) {
	if deps.DB == nil {
		return nil, errors.New("profile: Deps.DB is required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	sealer, err := auth.NewSealer(cfg.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("profile: encryption key: %w", err)
	}
	p := &Profiles{cfg: cfg, pool: deps.DB, log: deps.Log, now: deps.Now, sealer: sealer}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("component", "profile")
	if p.now == nil {
		p.now = time.Now
	}
	p.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cellgrid", Subsystem: "profile", Name: "requests_total",
		Help: "Profile requests by operation (get, update, export, erase) and HTTP status.",
	}, []string{"op", "status"})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(p.requests); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("profile: register metric: %w", err)
			}
			p.requests = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return p, nil
}

// Register adds the routes to mux; every one is wrapped in requireAuth.
func (p *Profiles) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("GET /player/{playerId}/profile", requireAuth(p.handle("get", p.handleGet)))
	mux.Handle("PATCH /player/me", requireAuth(p.handle("update", p.handlePatch)))
	mux.Handle("GET /player/me/export", requireAuth(p.handle("export", p.handleExport)))
	mux.Handle("DELETE /player/me", requireAuth(p.handle("erase", p.handleErase)))
}

// Public is the profile anyone logged in may see.
type Public struct {
	PlayerID    uuid.UUID  `json:"player_id"`
	Username    string     `json:"username"`
	Level       int        `json:"level"`
	XP          int64      `json:"xp"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// Get returns the public profile of a player that exists and is not erased.
func (p *Profiles) Get(ctx context.Context, id uuid.UUID) (Public, error) {
	return getPublic(ctx, p.pool, id)
}

type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getPublic(ctx context.Context, q queryer, id uuid.UUID) (Public, error) {
	pub := Public{PlayerID: id}
	var username *string
	err := q.QueryRow(ctx, `SELECT username, level, xp, created_at, last_login_at FROM players
		WHERE id = $1 AND erased_at IS NULL`, id).Scan(&username, &pub.Level, &pub.XP, &pub.CreatedAt, &pub.LastLoginAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Public{}, ErrNotFound
	}
	if err != nil {
		return Public{}, fmt.Errorf("get profile %s: %w", id, err)
	}
	if username != nil {
		pub.Username = *username
	}
	return pub, nil
}

// SetUsername renames a player. The rules are auth.ValidUsername's;
// uniqueness (any case) is the database's unique index.
func (p *Profiles) SetUsername(ctx context.Context, id uuid.UUID, username string) (Public, error) {
	if !auth.ValidUsername(username) {
		return Public{}, auth.ErrInvalidUsername
	}
	var pub Public
	err := db.RunTx(ctx, p.pool, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE players SET username = $2 WHERE id = $1 AND erased_at IS NULL`, id, username)
		if db.IsUniqueViolation(err) {
			return ErrUsernameTaken
		}
		if err != nil {
			return fmt.Errorf("set username: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		pub, err = getPublic(ctx, tx, id)
		return err
	})
	return pub, err
}

// Erase removes a player's personal data: username and email are cleared
// and erased_at set; auth identities, refresh families and their tokens
// are deleted (so no login or refresh reaches this player again: a new
// login with the same identity makes a new player). What the player (or
// their game client) wrote goes too: their key/value storage is deleted,
// the payloads of their telemetry events are cleared (type, time, session
// and cell stay, for the anomaly rules and aggregate analytics) and their
// telemetry dead letters are deleted. Ledger, inventory, session and
// leaderboard rows stay, keyed by the anonymous id. Erasing an erased
// player does the same again (finishing an erasure that failed half-way).
func (p *Profiles) Erase(ctx context.Context, id uuid.UUID) error {
	err := db.RunTx(ctx, p.pool, func(ctx context.Context, tx pgx.Tx) error {
		var erased *time.Time
		err := tx.QueryRow(ctx, `SELECT erased_at FROM players WHERE id = $1`, id).Scan(&erased)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("erase %s: %w", id, err)
		}
		stmts := []string{
			`UPDATE players SET username = NULL, email_enc = NULL, erased_at = COALESCE(erased_at, $2) WHERE id = $1`,
			`DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_token_families WHERE player_id = $1)`,
			`DELETE FROM refresh_token_families WHERE player_id = $1`,
			`DELETE FROM auth_identities WHERE player_id = $1`,
			`DELETE FROM player_storage WHERE player_id = $1`,
		}
		for i, s := range stmts {
			args := []any{id}
			if i == 0 {
				args = append(args, p.now())
			}
			if _, err := tx.Exec(ctx, s, args...); err != nil {
				return fmt.Errorf("erase %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Telemetry can be large: cleared in bounded transactions after the
	// account is closed (a failure here leaves the account erased; the
	// next erase request finishes the job).
	for _, s := range []string{
		`UPDATE game_event_log SET payload = NULL WHERE id IN
			(SELECT id FROM game_event_log WHERE player_id = $1 AND payload IS NOT NULL LIMIT $2)`,
		`DELETE FROM telemetry_dead_letter WHERE id IN
			(SELECT id FROM telemetry_dead_letter WHERE player_id = $1 LIMIT $2)`,
	} {
		for {
			var n int64
			err := db.RunTx(ctx, p.pool, func(ctx context.Context, tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, s, id, eraseBatch)
				n = tag.RowsAffected()
				return err
			})
			if err != nil {
				return fmt.Errorf("erase %s: telemetry: %w", id, err)
			}
			if n < eraseBatch {
				break
			}
		}
	}
	return nil
}

// eraseBatch bounds the telemetry rows one erasure transaction touches.
const eraseBatch = 1000
