package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/internal/db"
)

// deadline is how long a session of mode may run without a result.
func (s *Store) deadline(mode string) time.Duration {
	if d, ok := s.cfg.ResultDeadlines[mode]; ok && d > 0 {
		return d
	}
	return s.cfg.LiveTTL
}

// ReapLost marks lost every running session of this cell's region that
// has had no result for longer than its mode's deadline: the history shows
// it lost, its live state (which lets players join through the relay) is
// deleted, and session.lost is published. No game_sessions row stays
// running forever. It returns the sessions it marked.
func (s *Store) ReapLost(ctx context.Context, now time.Time) ([]string, error) {
	shortest := s.cfg.LiveTTL
	for _, d := range s.cfg.ResultDeadlines {
		if d > 0 && d < shortest {
			shortest = d
		}
	}
	type cand struct {
		id, mode, dgs string
		started       time.Time
	}
	var cands []cand
	rows, err := s.pool.Query(ctx, `SELECT id::TEXT, game_mode, dgs_id, started_at FROM game_sessions
		WHERE region = $1 AND status = $2 AND started_at < $3`, s.cfg.Region, StatusRunning, now.Add(-shortest))
	if err != nil {
		return nil, fmt.Errorf("reap sessions: %w", err)
	}
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.mode, &c.dgs, &c.started); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reap sessions: %w", err)
		}
		if now.Sub(c.started) > s.deadline(c.mode) {
			cands = append(cands, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reap sessions: %w", err)
	}
	var lost []string
	for _, c := range cands {
		sess := Session{ID: c.id, Mode: c.mode, DGSID: c.dgs}
		marked := false
		err := db.RunTx(ctx, s.pool, func(ctx context.Context, tx pgx.Tx) error {
			marked = false
			var id string
			err := tx.QueryRow(ctx, `UPDATE game_sessions SET status = $2, ended_at = $3 WHERE id = $1 AND status = $4 RETURNING id::TEXT`,
				c.id, StatusLost, now, StatusRunning).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // its result arrived meanwhile
			}
			if err != nil {
				return err
			}
			marked = true
			sess.Teams = nil
			prow, err := tx.Query(ctx, `SELECT player_id::TEXT, team FROM game_session_players WHERE session_id = $1 ORDER BY team, player_id`, c.id)
			if err != nil {
				return err
			}
			defer prow.Close()
			for prow.Next() {
				var p string
				var team int
				if err := prow.Scan(&p, &team); err != nil {
					return err
				}
				for len(sess.Teams) <= team {
					sess.Teams = append(sess.Teams, nil)
				}
				sess.Teams[team] = append(sess.Teams[team], p)
			}
			return prow.Err()
		})
		if err != nil {
			return lost, fmt.Errorf("reap session %s: %w", c.id, err)
		}
		if !marked {
			continue
		}
		s.log.Warn("session lost: no result before its deadline", "session", c.id, "dgs", c.dgs, "mode", c.mode, "started", c.started)
		if err := s.rd.Do(ctx, s.rd.B().Del().Key(s.liveKey(c.id)).Build()).Error(); err != nil {
			return lost, fmt.Errorf("reap session %s: live: %w", c.id, err)
		}
		if err := s.publish(ctx, StatusLost, sess, now); err != nil {
			s.log.Warn("session.lost not published", "session", c.id, "err", err)
		}
		lost = append(lost, c.id)
	}
	return lost, nil
}

// RunReaper runs ReapLost every ReapInterval until ctx ends.
func (s *Store) RunReaper(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if _, err := s.ReapLost(ctx, now); err != nil && ctx.Err() == nil {
				s.log.Warn("session reaper", "err", err)
			}
		}
	}
}
