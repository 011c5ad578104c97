package leaderboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
)

// Leaderboards serves every configured board.
type Leaderboards struct {
	cfg    Config
	db     *pgxpool.Pool
	rdb    rueidis.Client
	log    *slog.Logger
	boards map[string]*Definition
	names  *usernameCache
	m      metrics

	mu sync.Mutex
	// mu guards the following fields.
	seasons    map[string]seasonEntry // board → cached current season
	rebuilding map[string]*rebuild    // Redis key → rebuild in flight
}

type seasonEntry struct {
	season  int
	fetched time.Time
}

type rebuild struct {
	done chan struct{}
	err  error
}

// New validates cfg. It does no I/O.
func New(cfg Config, deps Deps) (*Leaderboards, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.DB == nil || deps.Redis == nil {
		return nil, errors.New("leaderboard: Deps.DB and Deps.Redis required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	l := &Leaderboards{
		cfg: cfg, db: deps.DB, rdb: deps.Redis, log: deps.Log.With("component", "leaderboard"),
		boards:     map[string]*Definition{},
		m:          newMetrics(deps.Metrics),
		seasons:    map[string]seasonEntry{},
		rebuilding: map[string]*rebuild{},
	}
	l.names = newUsernameCache(deps.DB, cfg.UsernameTTL, cfg.UsernameCacheSize, cfg.Now)
	for i := range l.cfg.Boards {
		l.boards[l.cfg.Boards[i].ID] = &l.cfg.Boards[i]
	}
	return l, nil
}

// Boards returns the definitions (for global/results: which boards a match
// feeds).
func (l *Leaderboards) Boards() []Definition { return append([]Definition(nil), l.cfg.Boards...) }

// Region maps a cell to its region.
func (l *Leaderboards) Region(cell string) string {
	if r, ok := l.cfg.Regions[cell]; ok {
		return r
	}
	return cell
}

// Score is one score to submit.
type Score struct {
	Board    string
	PlayerID string
	Region   string
	Value    int64
}

// Record is a leaderboard record as committed.
type Record struct {
	Board     string
	Season    int
	PlayerID  string
	Region    string
	OldRegion string // region before this write ("" when new)
	Score     int64
}

// Submit applies s to the board's current season inside tx (the caller's
// db.RunTx) and returns the record as it will be committed. Exactly-once
// application is the caller's concern (applied_events in the same tx).
func (l *Leaderboards) Submit(ctx context.Context, tx pgx.Tx, s Score) (Record, error) {
	d, ok := l.boards[s.Board]
	if !ok {
		return Record{}, fmt.Errorf("submit %s: %w", s.Board, ErrUnknownBoard)
	}
	if d.Operator == OpIncr && s.Value < 0 {
		return Record{}, fmt.Errorf("submit %s: negative increment %d", s.Board, s.Value)
	}
	season, err := seasonTx(ctx, tx, d.ID)
	if err != nil {
		return Record{}, fmt.Errorf("submit %s: %w", s.Board, err)
	}
	rec := Record{Board: d.ID, Season: season, PlayerID: s.PlayerID, Region: s.Region}
	err = tx.QueryRow(ctx, `SELECT region FROM leaderboard_records
		WHERE leaderboard_id = $1 AND season = $2 AND player_id = $3`, d.ID, season, s.PlayerID).Scan(&rec.OldRegion)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("submit %s: %w", s.Board, err)
	}
	var combine string
	switch {
	case d.Operator == OpSet:
		combine = "excluded.score"
	case d.Operator == OpIncr:
		combine = "leaderboard_records.score + excluded.score"
	case d.Order == OrderAsc:
		combine = "LEAST(leaderboard_records.score, excluded.score)"
	default:
		combine = "GREATEST(leaderboard_records.score, excluded.score)"
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO leaderboard_records (leaderboard_id, season, player_id, region, score)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (leaderboard_id, season, player_id) DO UPDATE
		SET score = `+combine+`, region = excluded.region,
			num_scores = leaderboard_records.num_scores + 1, updated_at = now()
		RETURNING score`, d.ID, season, s.PlayerID, s.Region, s.Value).Scan(&rec.Score)
	if err != nil {
		return Record{}, fmt.Errorf("submit %s: %w", s.Board, err)
	}
	return rec, nil
}

// seasonTx reads (creating if needed) the board's current season inside tx,
// so a write and a concurrent reset serialize.
func seasonTx(ctx context.Context, tx pgx.Tx, board string) (int, error) {
	var season int
	err := tx.QueryRow(ctx, `SELECT season FROM leaderboard_seasons WHERE leaderboard_id = $1`, board).Scan(&season)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = tx.Exec(ctx, `INSERT INTO leaderboard_seasons (leaderboard_id, season) VALUES ($1, 0)
			ON CONFLICT (leaderboard_id) DO NOTHING`, board)
		return 0, err
	}
	return season, err
}

// Publish copies committed records into Redis. Safe to repeat.
func (l *Leaderboards) Publish(ctx context.Context, recs []Record) error {
	var cmds rueidis.Commands
	for _, r := range recs {
		d, ok := l.boards[r.Board]
		if !ok {
			continue
		}
		cmds = append(cmds, l.zadd(d, l.key(d.ID, r.Season, ""), float64(r.Score), r.PlayerID))
		if d.Scope == ScopeRegional {
			if r.OldRegion != "" && r.OldRegion != r.Region {
				cmds = append(cmds, l.rdb.B().Zrem().Key(l.key(d.ID, r.Season, r.OldRegion)).Member(r.PlayerID).Build())
			}
			cmds = append(cmds, l.zadd(d, l.key(d.ID, r.Season, r.Region), float64(r.Score), r.PlayerID))
		}
	}
	for _, res := range l.rdb.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// zadd writes a value of record. Where the operator makes the record
// monotonic (best, non-negative incr) GT/LT keep a late or repeated publish
// from lowering it.
func (l *Leaderboards) zadd(d *Definition, key string, score float64, member string) rueidis.Completed {
	return l.zaddMany(d, key, []scoreMember{{member: member, score: int64(score)}})
}

func (l *Leaderboards) zaddMany(d *Definition, key string, ms []scoreMember) rueidis.Completed {
	b := l.rdb.B().Zadd().Key(key)
	switch {
	case d.Operator == OpSet:
		return fillZadd(b.ScoreMember(), ms)
	case d.Operator == OpBest && d.Order == OrderAsc:
		return fillZadd(b.Lt().ScoreMember(), ms)
	default:
		return fillZadd(b.Gt().ScoreMember(), ms)
	}
}

func fillZadd[T interface {
	ScoreMember(float64, string) T
	Build() rueidis.Completed
}](sm T, ms []scoreMember) rueidis.Completed {
	for _, m := range ms {
		sm = sm.ScoreMember(float64(m.score), m.member)
	}
	return sm.Build()
}

func (l *Leaderboards) key(board string, season int, region string) string {
	k := l.cfg.KeyPrefix + ":" + board + ":s" + strconv.Itoa(season)
	if region != "" {
		k += ":r:" + region
	}
	return k
}

func builtKey(key string) string { return key + ":built" }

// CurrentSeason returns the board's current season (cached for SeasonTTL).
func (l *Leaderboards) CurrentSeason(ctx context.Context, board string) (int, error) {
	now := l.cfg.Now()
	l.mu.Lock()
	e, ok := l.seasons[board]
	l.mu.Unlock()
	if ok && now.Sub(e.fetched) < l.cfg.SeasonTTL {
		return e.season, nil
	}
	var season int
	err := l.db.QueryRow(ctx, `SELECT season FROM leaderboard_seasons WHERE leaderboard_id = $1`, board).Scan(&season)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("season %s: %w", board, err)
	}
	l.mu.Lock()
	l.seasons[board] = seasonEntry{season: season, fetched: now}
	l.mu.Unlock()
	return season, nil
}

// ensureBuilt rebuilds key from leaderboard_records unless its built marker
// exists. Concurrent readers of one key share one rebuild.
func (l *Leaderboards) ensureBuilt(ctx context.Context, d *Definition, season int, region string) error {
	key := l.key(d.ID, season, region)
	n, err := l.rdb.Do(ctx, l.rdb.B().Exists().Key(builtKey(key)).Build()).AsInt64()
	if err != nil {
		return fmt.Errorf("board %s: %w", key, err)
	}
	if n == 1 {
		return nil
	}
	l.mu.Lock()
	rb, inflight := l.rebuilding[key]
	if !inflight {
		rb = &rebuild{done: make(chan struct{})}
		l.rebuilding[key] = rb
	}
	l.mu.Unlock()
	if inflight {
		select {
		case <-rb.done:
			return rb.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	rb.err = l.rebuild(ctx, d, season, region, key)
	l.mu.Lock()
	delete(l.rebuilding, key)
	l.mu.Unlock()
	close(rb.done)
	return rb.err
}

const rebuildChunk = 1000

func (l *Leaderboards) rebuild(ctx context.Context, d *Definition, season int, region, key string) error {
	start := time.Now()
	q := `SELECT player_id::TEXT, score FROM leaderboard_records WHERE leaderboard_id = $1 AND season = $2`
	args := []any{d.ID, season}
	if region != "" {
		q += ` AND region = $3`
		args = append(args, region)
	}
	rows, err := l.db.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", key, err)
	}
	defer rows.Close()
	var pending rueidis.Commands
	var n int
	flush := func() error {
		for _, r := range l.rdb.DoMulti(ctx, pending...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return nil
	}
	var batch []scoreMember
	emit := func() {
		if len(batch) > 0 {
			pending = append(pending, l.zaddMany(d, key, batch))
			batch = batch[:0]
		}
	}
	for rows.Next() {
		var m scoreMember
		if err := rows.Scan(&m.member, &m.score); err != nil {
			return fmt.Errorf("rebuild %s: %w", key, err)
		}
		batch = append(batch, m)
		n++
		if len(batch) == rebuildChunk {
			emit()
			if len(pending) >= 16 {
				if err := flush(); err != nil {
					return fmt.Errorf("rebuild %s: %w", key, err)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rebuild %s: %w", key, err)
	}
	if n == 0 {
		// Nothing to rank (a region or past season with no records, e.g. one
		// a reader made up): no key and no built marker, so reads of boards
		// that do not exist leave nothing behind in Redis. The next read
		// asks the database again (one indexed, empty query).
		return nil
	}
	emit()
	pending = append(pending, l.rdb.B().Set().Key(builtKey(key)).Value(strconv.FormatInt(time.Now().Unix(), 10)).Build())
	if err := flush(); err != nil {
		return fmt.Errorf("rebuild %s: %w", key, err)
	}
	l.m.rebuilds.Inc()
	l.log.Info("leaderboard rebuilt from database", "key", key, "records", n, "took", time.Since(start))
	return nil
}

type scoreMember struct {
	member string
	score  int64
}

type metrics struct {
	reads    *prometheus.HistogramVec
	rebuilds prometheus.Counter
	resets   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		reads: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cellgrid_leaderboard_read_seconds", Help: "Leaderboard read latency by kind (top, around).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"kind"}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellgrid_leaderboard_rebuilds_total", Help: "Redis boards rebuilt from the database.",
		}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellgrid_leaderboard_resets_total", Help: "Season resets performed by this instance.",
		}),
	}
	m.reads = httpapi.RegisterCollector(reg, m.reads)
	m.rebuilds = httpapi.RegisterCollector(reg, m.rebuilds)
	m.resets = httpapi.RegisterCollector(reg, m.resets)
	return m
}

// Records reads the current-season records of players on boards, for
// republishing a match whose Redis update may not have happened (a
// redelivery after a crash between commit and Publish).
func (l *Leaderboards) Records(ctx context.Context, boards, players []string) ([]Record, error) {
	var out []Record
	for _, b := range boards {
		if _, ok := l.boards[b]; !ok {
			continue
		}
		rows, err := l.db.Query(ctx, `SELECT r.season, r.player_id::TEXT, r.region, r.score
			FROM leaderboard_records r JOIN leaderboard_seasons s
			ON s.leaderboard_id = r.leaderboard_id AND s.season = r.season
			WHERE r.leaderboard_id = $1 AND r.player_id = ANY($2::UUID[])`, b, players)
		if err != nil {
			return nil, fmt.Errorf("records %s: %w", b, err)
		}
		for rows.Next() {
			r := Record{Board: b}
			if err := rows.Scan(&r.Season, &r.PlayerID, &r.Region, &r.Score); err != nil {
				rows.Close()
				return nil, fmt.Errorf("records %s: %w", b, err)
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("records %s: %w", b, err)
		}
	}
	return out, nil
}
