package achievement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Achievements serves achievements and player storage.
type Achievements struct {
	cfg     Config
	db      *pgxpool.Pool
	log     *slog.Logger
	unlocks prometheus.Counter
}

// New validates cfg; no I/O.
func New(cfg Config, deps Deps) (*Achievements, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("achievement: Deps.DB required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	a := &Achievements{cfg: cfg, db: deps.DB, log: deps.Log.With("component", "achievement"),
		unlocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellgrid_achievements_unlocked_total", Help: "Achievements unlocked."})}
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(a.unlocks); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				a.unlocks = are.ExistingCollector.(prometheus.Counter)
			}
		}
	}
	return a, nil
}

// MatchFacts is what one match says about one player.
type MatchFacts struct {
	GameMode string
	Won      bool
	Score    int64
}

func (f MatchFacts) amount(event string) int64 {
	switch event {
	case EventWin:
		if f.Won {
			return 1
		}
	case EventMatch:
		return 1
	case EventScore:
		return max(f.Score, 0)
	}
	return 0
}

// Advance applies one match's facts to the player's achievements inside tx
// (the caller guarantees the match is applied once) and returns the ids
// unlocked by it.
func (a *Achievements) Advance(ctx context.Context, tx pgx.Tx, player uuid.UUID, f MatchFacts, now time.Time) ([]string, error) {
	var unlocked []string
	for _, d := range a.cfg.Achievements {
		if d.GameMode != "" && d.GameMode != f.GameMode {
			continue
		}
		amt := f.amount(d.Event)
		if amt == 0 {
			continue
		}
		var progress int64
		var at *time.Time
		err := tx.QueryRow(ctx, `SELECT progress, unlocked_at FROM achievement_progress
			WHERE player_id = $1 AND achievement_id = $2`, player, d.ID).Scan(&progress, &at)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("advance %s: %w", d.ID, err)
		}
		if at != nil {
			continue // unlocked once, for good
		}
		if d.Kind == KindUnlock {
			progress = max(progress, amt)
		} else {
			progress += amt
		}
		progress = min(progress, d.Goal)
		if progress >= d.Goal {
			t := now.UTC()
			at = &t
			unlocked = append(unlocked, d.ID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO achievement_progress (player_id, achievement_id, progress, unlocked_at)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (player_id, achievement_id) DO UPDATE
			SET progress = excluded.progress, unlocked_at = excluded.unlocked_at, updated_at = now()`,
			player, d.ID, progress, at); err != nil {
			return nil, fmt.Errorf("advance %s: %w", d.ID, err)
		}
	}
	return unlocked, nil
}

// Unlocked counts unlocks after the caller's transaction committed.
func (a *Achievements) Unlocked(n int) { a.unlocks.Add(float64(n)) }

// Status is one achievement as a player sees it.
type Status struct {
	Definition
	Progress   int64      `json:"progress"`
	UnlockedAt *time.Time `json:"unlocked_at,omitempty"`
}

// List returns every achievement with the player's progress.
func (a *Achievements) List(ctx context.Context, player uuid.UUID) ([]Status, error) {
	rows, err := a.db.Query(ctx, `SELECT achievement_id, progress, unlocked_at FROM achievement_progress WHERE player_id = $1`, player)
	if err != nil {
		return nil, fmt.Errorf("achievements: %w", err)
	}
	defer rows.Close()
	type row struct {
		progress int64
		at       *time.Time
	}
	got := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.progress, &r.at); err != nil {
			return nil, fmt.Errorf("achievements: %w", err)
		}
		got[id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("achievements: %w", err)
	}
	out := make([]Status, 0, len(a.cfg.Achievements))
	for _, d := range a.cfg.Achievements {
		r := got[d.ID]
		out = append(out, Status{Definition: d, Progress: r.progress, UnlockedAt: r.at})
	}
	return out, nil
}
