package leaderboard

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Entry is one ranked line of a board.
type Entry struct {
	Rank     int64  `json:"rank"` // 1-based
	PlayerID string `json:"player_id"`
	Username string `json:"username"`
	Score    int64  `json:"score"`
}

// Page is a slice of a board.
type Page struct {
	Leaderboard string  `json:"leaderboard"`
	Season      int     `json:"season"`
	Region      string  `json:"region,omitempty"`
	Entries     []Entry `json:"entries"`
	// NextCursor continues a top listing; empty at the end.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Query selects a page.
type Query struct {
	Board  string
	Season *int   // nil: current season
	Region string // "" = the global board
	Limit  int    // 0: DefaultLimit
	Offset int64  // start rank - 1 (from the cursor)
	Around string // player id: centre the page on this player
}

// Read returns a page of the board from Redis, rebuilding the Redis key from
// the database first when it is missing.
func (l *Leaderboards) Read(ctx context.Context, q Query) (Page, error) {
	start := time.Now()
	d, ok := l.boards[q.Board]
	if !ok {
		return Page{}, fmt.Errorf("read %s: %w", q.Board, ErrUnknownBoard)
	}
	if q.Region != "" && d.Scope != ScopeRegional {
		return Page{}, fmt.Errorf("read %s: %w", q.Board, ErrBadRegion)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = l.cfg.DefaultLimit
	}
	limit = min(limit, l.cfg.MaxLimit)
	season, err := l.CurrentSeason(ctx, d.ID)
	if err != nil {
		return Page{}, err
	}
	if q.Season != nil {
		// Seasons that have not happened yet have no board: refused before
		// anything is looked up, so a reader cannot mint keys by counting.
		if *q.Season < 0 || *q.Season > season {
			return Page{}, fmt.Errorf("read %s season %d: %w", d.ID, *q.Season, ErrUnknownSeason)
		}
		season = *q.Season
	}
	if err := l.ensureBuilt(ctx, d, season, q.Region); err != nil {
		return Page{}, err
	}
	key := l.key(d.ID, season, q.Region)
	rev := d.Order == OrderDesc
	offset := max(q.Offset, 0)
	kind := "top"
	if q.Around != "" {
		kind = "around"
		var cmd rueidis.Completed
		if rev {
			cmd = l.rdb.B().Zrevrank().Key(key).Member(q.Around).Build()
		} else {
			cmd = l.rdb.B().Zrank().Key(key).Member(q.Around).Build()
		}
		rank, err := l.rdb.Do(ctx, cmd).AsInt64()
		if rueidis.IsRedisNil(err) {
			return Page{}, fmt.Errorf("read %s around %s: %w", d.ID, q.Around, ErrNotRanked)
		}
		if err != nil {
			return Page{}, fmt.Errorf("read %s: %w", d.ID, err)
		}
		offset = max(rank-int64(limit/2), 0)
	}
	// Fetch one more than asked to know whether a next page exists.
	rng := l.rdb.B().Zrange().Key(key).Min(strconv.FormatInt(offset, 10)).Max(strconv.FormatInt(offset+int64(limit), 10))
	var cmd rueidis.Completed
	if rev {
		cmd = rng.Rev().Withscores().Build()
	} else {
		cmd = rng.Withscores().Build()
	}
	zs, err := l.rdb.Do(ctx, cmd).AsZScores()
	if err != nil {
		return Page{}, fmt.Errorf("read %s: %w", d.ID, err)
	}
	page := Page{Leaderboard: d.ID, Season: season, Region: q.Region, Entries: make([]Entry, 0, min(len(zs), limit))}
	if len(zs) > limit {
		zs = zs[:limit]
		page.NextCursor = encodeCursor(offset + int64(limit))
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i] = z.Member
	}
	names, err := l.names.lookup(ctx, ids)
	if err != nil {
		return Page{}, err
	}
	for i, z := range zs {
		page.Entries = append(page.Entries, Entry{Rank: offset + int64(i) + 1, PlayerID: z.Member, Username: names[z.Member], Score: int64(z.Score)})
	}
	l.m.reads.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	return page, nil
}
