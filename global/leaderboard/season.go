package leaderboard

import (
	"context"
	"fmt"
	"time"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/jackc/pgx/v5"
)

// Run resets boards on their cron schedules until ctx is cancelled. Every
// global instance may run it: a reset is a compare-and-set on
// next_reset_at, so a due reset happens once.
func (l *Leaderboards) Run(ctx context.Context) error {
	if err := l.initSeasons(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	t := time.NewTicker(l.cfg.ResetCheckInterval)
	defer t.Stop()
	for {
		if _, err := l.ResetDue(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("leaderboard reset", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// initSeasons makes sure every scheduled board has a season row with a
// next reset time.
func (l *Leaderboards) initSeasons(ctx context.Context) error {
	now := l.cfg.Now().UTC()
	for _, d := range l.cfg.Boards {
		var next *time.Time
		if d.cron != nil {
			n := d.cron.Next(now)
			next = &n
		}
		err := db.RunTx(ctx, l.db, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO leaderboard_seasons (leaderboard_id, season, started_at, next_reset_at)
				VALUES ($1, 0, $2, $3) ON CONFLICT (leaderboard_id) DO NOTHING`, d.ID, now, next)
			if err != nil || next == nil {
				return err
			}
			// A schedule added to an existing board.
			_, err = tx.Exec(ctx, `UPDATE leaderboard_seasons SET next_reset_at = $2
				WHERE leaderboard_id = $1 AND next_reset_at IS NULL`, d.ID, next)
			return err
		})
		if err != nil {
			return fmt.Errorf("leaderboard %s: init season: %w", d.ID, err)
		}
	}
	return nil
}

// ResetDue archives every board whose next reset time has passed by
// bumping its season, and returns the boards it reset. Records of older
// seasons stay in leaderboard_records (read them with Query.Season).
func (l *Leaderboards) ResetDue(ctx context.Context) ([]string, error) {
	now := l.cfg.Now().UTC()
	var reset []string
	for _, d := range l.cfg.Boards {
		if d.cron == nil {
			continue
		}
		next := d.cron.Next(now)
		var season int
		done := false
		err := db.RunTx(ctx, l.db, func(ctx context.Context, tx pgx.Tx) error {
			done = false
			err := tx.QueryRow(ctx, `UPDATE leaderboard_seasons
				SET season = season + 1, started_at = $2, next_reset_at = $3
				WHERE leaderboard_id = $1 AND next_reset_at <= $2
				RETURNING season`, d.ID, now, next).Scan(&season)
			if err == pgx.ErrNoRows {
				return nil
			}
			done = err == nil
			return err
		})
		if err != nil {
			return reset, fmt.Errorf("leaderboard %s: reset: %w", d.ID, err)
		}
		if done {
			reset = append(reset, d.ID)
			l.m.resets.Inc()
			l.mu.Lock()
			delete(l.seasons, d.ID)
			l.mu.Unlock()
			l.log.Info("leaderboard season reset", "board", d.ID, "season", season, "next_reset", next)
		}
	}
	return reset, nil
}
