package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/internal/supervise"
)

// RestorerConfig tunes a Restorer. Zero fields take DefaultRestorerConfig.
type RestorerConfig struct {
	// Cell and Region select the sessions to restore: running rows of
	// Region whose server belongs to Cell (fleet server ids are
	// "<cell>-…"). Region defaults to Cell.
	Cell   string
	Region string
	// LiveTTL is the Store's: a restored key lives what is left of it.
	// Default 2h.
	LiveTTL time.Duration
	// Interval is how often the restorer checks whether Redis lost its
	// data (a restart without persistence, a flush). Default 2s.
	Interval time.Duration
}

// DefaultRestorerConfig returns every default in one place (Cell has none).
func DefaultRestorerConfig() RestorerConfig {
	return RestorerConfig{LiveTTL: 2 * time.Hour, Interval: 2 * time.Second}
}

// RestorerDeps are what a Restorer needs; all but Log are required.
type RestorerDeps struct {
	Redis rueidis.Client
	DB    *pgxpool.Pool
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Restorer rebuilds the live session keys from game_sessions when the
// cell's Redis lost them, so running matches keep accepting reconnects
// after a Redis restart. It notices the loss by a marker key it writes
// after each rebuild; a missing marker (first start, restart, flush)
// triggers one.
type Restorer struct {
	cfg    RestorerConfig
	rd     rueidis.Client
	pool   *pgxpool.Pool
	log    *slog.Logger
	prefix string
	life   supervise.Lifecycle
}

// NewRestorer returns a Restorer. Nothing runs until Run.
func NewRestorer(cfg RestorerConfig, deps RestorerDeps) (*Restorer, error) {
	d := DefaultRestorerConfig()
	if cfg.Cell == "" {
		return nil, errors.New("session restorer: Config.Cell required")
	}
	if cfg.Region == "" {
		cfg.Region = cfg.Cell
	}
	if cfg.LiveTTL <= 0 {
		cfg.LiveTTL = d.LiveTTL
	}
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if deps.Redis == nil || deps.DB == nil {
		return nil, errors.New("session restorer: Redis and database are required")
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &Restorer{cfg: cfg, rd: deps.Redis, pool: deps.DB, log: log.With("component", "session restorer"), prefix: "cg:{" + cfg.Cell + "}:"}, nil
}

func (r *Restorer) markerKey() string { return r.prefix + "sess-restored" }

// Run checks every Interval until ctx ends or Close is called. A failed
// check or rebuild (Redis or the database away) is logged and retried.
func (r *Restorer) Run(ctx context.Context) error {
	ctx, done := r.life.Start(ctx)
	defer done()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if n, rebuilt, err := r.Check(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("live session check failed", "err", err)
		} else if rebuilt {
			r.log.Info("live sessions rebuilt from the database", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close stops a running Run and waits for it. Safe to call twice.
func (r *Restorer) Close() error {
	r.life.Close()
	return nil
}

// Check rebuilds the live keys when the marker is missing and reports how
// many sessions it restored.
func (r *Restorer) Check(ctx context.Context) (restored int, rebuilt bool, err error) {
	n, err := r.rd.Do(ctx, r.rd.B().Exists().Key(r.markerKey()).Build()).AsInt64()
	if err != nil {
		return 0, false, fmt.Errorf("check live sessions: %w", err)
	}
	if n == 1 {
		return 0, false, nil
	}
	restored, err = r.Rebuild(ctx)
	if err != nil {
		return restored, false, err
	}
	if err := r.rd.Do(ctx, r.rd.B().Set().Key(r.markerKey()).Value("1").Build()).Error(); err != nil {
		return restored, true, fmt.Errorf("check live sessions: marker: %w", err)
	}
	return restored, true, nil
}

// Rebuild writes the live key of every running session of the cell that
// lacks one, with what is left of its LiveTTL, and returns how many it
// wrote. A session that ended meanwhile loses the key again.
func (r *Restorer) Rebuild(ctx context.Context) (int, error) {
	rows, err := r.pool.Query(ctx, `SELECT id::TEXT, game_mode, dgs_id, dgs_addr, dgs_port, started_at FROM game_sessions
		WHERE region = $1 AND status = $2 AND dgs_id LIKE $3 AND started_at > $4`,
		r.cfg.Region, StatusRunning, r.cfg.Cell+"-%", time.Now().Add(-r.cfg.LiveTTL))
	if err != nil {
		return 0, fmt.Errorf("rebuild live sessions: %w", err)
	}
	type row struct {
		id   string
		doc  liveDoc
		left time.Duration
	}
	var todo []row
	for rows.Next() {
		var x row
		var addr string
		var port int
		var started time.Time
		if err := rows.Scan(&x.id, &x.doc.Mode, &x.doc.DGSID, &addr, &port, &started); err != nil {
			rows.Close()
			return 0, fmt.Errorf("rebuild live sessions: %w", err)
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			r.log.Warn("running session with a bad server address", "session", x.id, "addr", addr)
			continue
		}
		x.doc.GameAddr = netip.AddrPortFrom(ip, uint16(port)).String()
		x.doc.Started = started.UnixMilli()
		x.left = r.cfg.LiveTTL - time.Since(started)
		todo = append(todo, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rebuild live sessions: %w", err)
	}
	if len(todo) == 0 {
		return 0, nil
	}
	cmds := make(rueidis.Commands, 0, len(todo))
	ids := make([]string, 0, len(todo))
	for _, x := range todo {
		if x.left <= 0 {
			continue
		}
		doc, _ := json.Marshal(x.doc)
		cmds = append(cmds, r.rd.B().Set().Key(r.prefix+"sess:"+x.id).Value(string(doc)).Nx().PxMilliseconds(max(x.left.Milliseconds(), 1)).Build())
		ids = append(ids, x.id)
	}
	n := 0
	for _, res := range r.rd.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return n, fmt.Errorf("rebuild live sessions: %w", err)
		} else if err == nil {
			n++
		}
	}
	// End may have run between the query and the SETs: drop the key of
	// every session that is no longer running.
	ended, err := r.pool.Query(ctx, `SELECT id::TEXT FROM game_sessions WHERE id = ANY($1::UUID[]) AND status <> $2`, ids, StatusRunning)
	if err != nil {
		return n, fmt.Errorf("rebuild live sessions: recheck: %w", err)
	}
	var del []string
	for ended.Next() {
		var id string
		if err := ended.Scan(&id); err != nil {
			ended.Close()
			return n, fmt.Errorf("rebuild live sessions: recheck: %w", err)
		}
		del = append(del, r.prefix+"sess:"+id)
	}
	ended.Close()
	if err := ended.Err(); err != nil {
		return n, fmt.Errorf("rebuild live sessions: recheck: %w", err)
	}
	if len(del) > 0 {
		if err := r.rd.Do(ctx, r.rd.B().Del().Key(del...).Build()).Error(); err != nil {
			return n, fmt.Errorf("rebuild live sessions: drop ended: %w", err)
		}
	}
	return n, nil
}
