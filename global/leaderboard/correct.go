package leaderboard

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
)

// Correction is an operator's change to one player's record on the current
// season of a board: a new score, or (Remove) no record at all.
type Correction struct {
	Board    string
	PlayerID string
	Score    int64
	Remove   bool
}

// Correct applies c inside tx (the caller's db.RunTx) and returns the
// record before it and after it (after.Score is meaningless when
// c.Remove). Unlike Submit it ignores the board's operator: a correction
// may lower a best score. Only an existing record can be corrected
// (ErrNotRanked otherwise). Call PublishCorrection after the commit.
func (l *Leaderboards) Correct(ctx context.Context, tx pgx.Tx, c Correction) (before, after Record, err error) {
	d, ok := l.boards[c.Board]
	if !ok {
		return Record{}, Record{}, fmt.Errorf("correct %s: %w", c.Board, ErrUnknownBoard)
	}
	season, err := seasonTx(ctx, tx, d.ID)
	if err != nil {
		return Record{}, Record{}, fmt.Errorf("correct %s: %w", c.Board, err)
	}
	before = Record{Board: d.ID, Season: season, PlayerID: c.PlayerID}
	err = tx.QueryRow(ctx, `SELECT region, score FROM leaderboard_records
		WHERE leaderboard_id = $1 AND season = $2 AND player_id = $3`, d.ID, season, c.PlayerID).Scan(&before.Region, &before.Score)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, Record{}, fmt.Errorf("correct %s: %w", c.Board, ErrNotRanked)
	}
	if err != nil {
		return Record{}, Record{}, fmt.Errorf("correct %s: %w", c.Board, err)
	}
	after = before
	after.OldRegion = before.Region
	if c.Remove {
		_, err = tx.Exec(ctx, `DELETE FROM leaderboard_records WHERE leaderboard_id = $1 AND season = $2 AND player_id = $3`,
			d.ID, season, c.PlayerID)
	} else {
		after.Score = c.Score
		_, err = tx.Exec(ctx, `UPDATE leaderboard_records SET score = $4, updated_at = now()
			WHERE leaderboard_id = $1 AND season = $2 AND player_id = $3`, d.ID, season, c.PlayerID, c.Score)
	}
	if err != nil {
		return Record{}, Record{}, fmt.Errorf("correct %s: %w", c.Board, err)
	}
	return before, after, nil
}

// PublishCorrection brings Redis in line with a committed correction:
// the member's score is overwritten (no GT/LT guard: it may go down) or
// removed, on the global key and the record's regional key. Safe to
// repeat.
func (l *Leaderboards) PublishCorrection(ctx context.Context, c Correction, after Record) error {
	d, ok := l.boards[after.Board]
	if !ok {
		return fmt.Errorf("publish correction %s: %w", after.Board, ErrUnknownBoard)
	}
	keys := []string{l.key(d.ID, after.Season, "")}
	if d.Scope == ScopeRegional && after.Region != "" {
		keys = append(keys, l.key(d.ID, after.Season, after.Region))
	}
	var cmds []rueidis.Completed
	for _, k := range keys {
		if c.Remove {
			cmds = append(cmds, l.rdb.B().Zrem().Key(k).Member(after.PlayerID).Build())
		} else {
			cmds = append(cmds, l.rdb.B().Zadd().Key(k).ScoreMember().ScoreMember(float64(after.Score), after.PlayerID).Build())
		}
	}
	for _, res := range l.rdb.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("publish correction: %w", err)
		}
	}
	return nil
}
