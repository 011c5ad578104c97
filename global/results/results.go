package results

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/global/achievement"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/global/telemetry"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/streams"
	"github.com/cellgrid/cellgrid/proto/events"
)

// Consumer applies match results.
type Consumer struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *prometheus.CounterVec // by outcome

	mu    sync.Mutex
	cells []string // guarded by mu: Config.Cells and every AddCell
}

// New validates cfg; no I/O.
func New(cfg Config, deps Deps) (*Consumer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.DB == nil || deps.JS == nil || deps.Leaderboards == nil {
		return nil, errors.New("results: Deps.DB, JS and Leaderboards required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	c := &Consumer{cfg: cfg, deps: deps, log: deps.Log.With("component", "results"), cells: slices.Clone(cfg.Cells)}
	c.m = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cellgrid_results_messages_total", Help: "Match result messages by outcome (applied, duplicate, invalid, retry, unknown_player).",
	}, []string{"outcome"})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(c.m); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				c.m = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return c, nil
}

// stream describes the global stream sourcing every cell's match results.
func (c *Consumer) stream() streams.SourcedStream {
	st := streams.SourcedStream{
		Name:          c.cfg.Stream,
		Description:   "match results of every cell, sourced into the global cluster",
		Cluster:       c.cfg.Cluster,
		Replicas:      c.cfg.Replicas,
		MaxAge:        7 * 24 * time.Hour,
		Duplicates:    10 * time.Minute,
		Durable:       c.cfg.Durable,
		AckWait:       c.cfg.AckWait,
		MaxAckPending: 256,
	}
	c.mu.Lock()
	for _, cell := range c.cells {
		st.Sources = append(st.Sources, source(cell))
	}
	c.mu.Unlock()
	return st
}

// source is cell's match stream, filtered to its results.
func source(cell string) *jetstream.StreamSource {
	return &jetstream.StreamSource{Name: events.MatchStream(cell), FilterSubject: events.MatchResultSubject(cell)}
}

// AddCell makes the global stream source cell's match results too, while
// Run consumes: they are applied like any other cell's (once per session).
// Idempotent, safe for concurrent use; no source is ever removed.
func (c *Consumer) AddCell(ctx context.Context, cell string) error {
	c.mu.Lock()
	if !slices.Contains(c.cells, cell) {
		c.cells = append(c.cells, cell)
	}
	c.mu.Unlock()
	if err := c.stream().AddSources(ctx, c.deps.JS, source(cell)); err != nil {
		return fmt.Errorf("results: add cell %s: %w", cell, err)
	}
	return nil
}

// EnsureStream creates or updates the sourcing stream in the global cluster.
func (c *Consumer) EnsureStream(ctx context.Context) error {
	if err := c.stream().EnsureStream(ctx, c.deps.JS); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// Run consumes until ctx is cancelled; it returns nil then, with every
// goroutine it started ended. Unacked messages are redelivered to the next
// consumer instance.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.stream().Consumer(ctx, c.deps.JS)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("results: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(32))
	if err != nil {
		return fmt.Errorf("results: messages: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				// Nothing would apply results any more: fail, so the
				// process turns unready and exits (and is restarted).
				return fmt.Errorf("results: consumer: %w", err)
			}
			c.log.Warn("results: next message", "err", err)
			continue
		}
		c.handle(ctx, msg)
	}
}

func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) {
	var mr events.MatchResult
	if err := json.Unmarshal(msg.Data(), &mr); err != nil || mr.SessionID == "" {
		c.log.Error("results: invalid match result, terminating message", "err", err, "subject", msg.Subject())
		c.m.WithLabelValues("invalid").Inc()
		_ = msg.Term()
		return
	}
	applied, err := c.Apply(ctx, mr)
	if err != nil {
		if ctx.Err() != nil {
			return // redelivered after AckWait to whoever consumes next
		}
		c.log.Error("results: apply failed, will retry", "session", mr.SessionID, "err", err)
		c.m.WithLabelValues("retry").Inc()
		_ = msg.NakWithDelay(c.cfg.NakDelay)
		return
	}
	if applied {
		c.m.WithLabelValues("applied").Inc()
	} else {
		c.m.WithLabelValues("duplicate").Inc()
	}
	if err := msg.Ack(); err != nil {
		c.log.Warn("results: ack", "session", mr.SessionID, "err", err)
	}
}

// Apply applies mr once (keyed by its session id) and updates the Redis
// boards. It reports false when the result had already been applied (the
// boards are then republished from the database).
func (c *Consumer) Apply(ctx context.Context, mr events.MatchResult) (bool, error) {
	var recs []leaderboard.Record
	var unlocked int
	applied := false
	err := db.RunTx(ctx, c.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		recs, unlocked, applied = recs[:0], 0, false
		var id string
		err := tx.QueryRow(ctx, `INSERT INTO applied_events (consumer, event_id) VALUES ($1, $2)
			ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`, c.cfg.Durable, mr.SessionID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("applied_events: %w", err)
		}
		applied = true
		for _, p := range mr.Players {
			r, n, err := c.applyPlayer(ctx, tx, mr, p)
			if err != nil {
				return fmt.Errorf("player %s: %w", p.PlayerID, err)
			}
			recs = append(recs, r...)
			unlocked += n
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("apply %s: %w", mr.SessionID, err)
	}
	if c.deps.Achievements != nil && unlocked > 0 {
		c.deps.Achievements.Unlocked(unlocked)
	}
	if !applied {
		// The first delivery may have died between commit and Publish.
		var players []string
		for _, p := range mr.Players {
			if _, err := uuid.Parse(p.PlayerID); err == nil {
				players = append(players, p.PlayerID)
			}
		}
		var boards []string
		for _, d := range c.deps.Leaderboards.Boards() {
			if d.GameMode == "" || d.GameMode == mr.GameMode {
				boards = append(boards, d.ID)
			}
		}
		if recs, err = c.deps.Leaderboards.Records(ctx, boards, players); err != nil {
			return false, fmt.Errorf("apply %s: republish: %w", mr.SessionID, err)
		}
	}
	if err := c.deps.Leaderboards.Publish(ctx, recs); err != nil {
		return applied, fmt.Errorf("apply %s: %w", mr.SessionID, err)
	}
	return applied, nil
}

func won(mr events.MatchResult, p events.PlayerResult) bool {
	if mr.Winner != "" {
		return mr.Winner == p.PlayerID
	}
	return mr.WinnerTeam >= 0 && len(mr.Players) > 1 && p.Team == mr.WinnerTeam
}

func (c *Consumer) applyPlayer(ctx context.Context, tx pgx.Tx, mr events.MatchResult, p events.PlayerResult) ([]leaderboard.Record, int, error) {
	pid, err := uuid.Parse(p.PlayerID)
	if err != nil {
		c.m.WithLabelValues("unknown_player").Inc()
		return nil, 0, nil
	}
	win := won(mr, p)
	xp := c.cfg.XPPerMatch + max(p.Score, 0)*c.cfg.XPPerScorePoint
	if win {
		xp += c.cfg.XPPerWin
	}
	var total int64
	var level int
	err = tx.QueryRow(ctx, `UPDATE players SET xp = xp + $2 WHERE id = $1 RETURNING xp, level`, pid, xp).Scan(&total, &level)
	if errors.Is(err, pgx.ErrNoRows) {
		c.m.WithLabelValues("unknown_player").Inc()
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("xp: %w", err)
	}
	if nl := c.cfg.Level(total); nl != level {
		if _, err := tx.Exec(ctx, `UPDATE players SET level = $2 WHERE id = $1`, pid, nl); err != nil {
			return nil, 0, fmt.Errorf("level: %w", err)
		}
	}
	rewards := map[string]int64{}
	for cur, v := range c.cfg.CurrencyPerMatch {
		rewards[cur] += v
	}
	if win {
		for cur, v := range c.cfg.CurrencyPerWin {
			rewards[cur] += v
		}
	}
	for cur, v := range rewards {
		if v <= 0 {
			continue
		}
		if _, err := store.Credit(ctx, tx, store.Entry{
			PlayerID: pid, Currency: cur, Amount: v, Kind: store.KindMatchReward,
			IdempotencyKey: "match:" + mr.SessionID, Reference: mr.Cell,
		}); err != nil {
			return nil, 0, err
		}
	}
	var unlocked []string
	if c.deps.Achievements != nil {
		at := mr.EndedAt
		if at.IsZero() {
			at = time.Now()
		}
		if unlocked, err = c.deps.Achievements.Advance(ctx, tx, pid, achievement.MatchFacts{GameMode: mr.GameMode, Won: win, Score: p.Score}, at); err != nil {
			return nil, 0, err
		}
	}
	var recs []leaderboard.Record
	region := c.deps.Leaderboards.Region(mr.Cell)
	for _, d := range c.deps.Leaderboards.Boards() {
		if d.GameMode != "" && d.GameMode != mr.GameMode {
			continue
		}
		var v int64
		switch d.Metric {
		case leaderboard.MetricWins:
			if win {
				v = 1
			}
		case leaderboard.MetricMatches:
			v = 1
		default:
			v = p.Score
		}
		if d.Operator == leaderboard.OpIncr && v < 0 {
			continue
		}
		r, err := c.deps.Leaderboards.Submit(ctx, tx, leaderboard.Score{Board: d.ID, PlayerID: pid.String(), Region: region, Value: v})
		if err != nil {
			return nil, 0, err
		}
		recs = append(recs, r)
	}
	if t := c.cfg.FlaggedInputsThreshold; t > 0 && p.FlaggedInputs > t {
		at := mr.EndedAt
		if at.IsZero() {
			at = time.Now()
		}
		if err := telemetry.FlagPlayer(ctx, tx, telemetry.Flag{
			PlayerID: pid, Rule: telemetry.RuleFlaggedInputs, WindowStart: at,
			Observed: p.FlaggedInputs, Threshold: t, Detail: "session " + mr.SessionID,
		}); err != nil {
			return nil, 0, err
		}
	}
	return recs, len(unlocked), nil
}
