package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/internal/supervise"
)

// JanitorConfig tunes a Janitor. Zero fields take the value of
// DefaultJanitorConfig.
type JanitorConfig struct {
	// Deadline is how long a ticket may stay matched (claimed, no session
	// yet) before the janitor puts it back in the queue. It must exceed
	// the matchmaker's HandlerTimeout, or a slow but live allocation loses
	// its tickets (MarkReady then fails with ErrClaimLost and the server is
	// given back). Default 30s.
	Deadline time.Duration
	// Interval is how often the janitor looks. Default 5s.
	Interval time.Duration
	// Batch bounds the tickets requeued per look. Default 500.
	Batch int
}

// DefaultJanitorConfig returns every default in one place.
func DefaultJanitorConfig() JanitorConfig {
	return JanitorConfig{Deadline: 30 * time.Second, Interval: 5 * time.Second, Batch: 500}
}

func (c JanitorConfig) withDefaults() JanitorConfig {
	d := DefaultJanitorConfig()
	if c.Deadline <= 0 {
		c.Deadline = d.Deadline
	}
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.Batch <= 0 {
		c.Batch = d.Batch
	}
	return c
}

// JanitorDeps are what a Janitor needs. Store is required.
type JanitorDeps struct {
	Store *Store
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Janitor requeues tickets left matched by a matchmaker that died between
// claiming them and marking them ready. Any number of janitors may run
// per cell: each requeue is one atomic script that acts only on a ticket
// still matched and claimed before the deadline.
type Janitor struct {
	cfg   JanitorConfig
	store *Store
	log   *slog.Logger
	life  supervise.Lifecycle
}

// NewJanitor returns a Janitor over deps.Store. Nothing runs until Run.
func NewJanitor(cfg JanitorConfig, deps JanitorDeps) (*Janitor, error) {
	if deps.Store == nil {
		return nil, errors.New("matchmaker janitor: Store is required")
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &Janitor{cfg: cfg.withDefaults(), store: deps.Store, log: log.With("component", "matchmaker janitor")}, nil
}

// Run sweeps every Interval until ctx ends or Close is called. A failed
// sweep (Redis away) is logged and retried at the next interval.
func (j *Janitor) Run(ctx context.Context) error {
	ctx, done := j.life.Start(ctx)
	defer done()
	t := time.NewTicker(j.cfg.Interval)
	defer t.Stop()
	for {
		if n, err := j.Sweep(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn("sweep failed", "err", err)
		} else if n > 0 {
			j.log.Warn("requeued abandoned tickets", "tickets", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close stops a running Run and waits for it. Safe to call twice.
func (j *Janitor) Close() error {
	j.life.Close()
	return nil
}

// reclaimScript puts one ticket claimed before the cutoff back in its
// pool, or only drops it from the claimed index when it is no longer
// matched.
// KEYS: claimed, ticket, pool, seq. ARGV: ticket id, cutoff ms, now ms, reason.
var reclaimScript = rueidis.NewLuaScript(`
if redis.call('HGET', KEYS[2], 'state') ~= 'matched' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'state', 'queued', 'session', '', 'updated', ARGV[3], 'requeued', ARGV[4])
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), redis.call('HGET', KEYS[2], 'entry'))
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// Sweep requeues up to Batch tickets matched longer than Deadline and
// returns how many it requeued.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	s := j.store
	now := s.now()
	cutoff := strconv.FormatInt(now.Add(-j.cfg.Deadline).UnixMilli(), 10)
	ids, err := s.c.Do(ctx, s.c.B().Zrange().Key(s.claimedKey()).Min("-inf").Max(cutoff).Byscore().Limit(0, int64(j.cfg.Batch)).Build()).AsStrSlice()
	if err != nil {
		return 0, fmt.Errorf("janitor: read claimed: %w", err)
	}
	n := 0
	for _, id := range ids {
		mode, err := s.c.Do(ctx, s.c.B().Hget().Key(s.ticketKey(id)).Field("mode").Build()).ToString()
		if rueidis.IsRedisNil(err) {
			// The ticket is forgotten: nothing to requeue.
			if err := s.c.Do(ctx, s.c.B().Zrem().Key(s.claimedKey()).Member(id).Build()).Error(); err != nil {
				return n, fmt.Errorf("janitor: drop %s: %w", id, err)
			}
			continue
		}
		if err != nil {
			return n, fmt.Errorf("janitor: read ticket %s: %w", id, err)
		}
		r, err := reclaimScript.Exec(ctx, s.c, []string{s.claimedKey(), s.ticketKey(id), s.poolKey(mode), s.seqKey(mode)},
			[]string{id, cutoff, strconv.FormatInt(now.UnixMilli(), 10), RequeueAbandoned}).AsInt64()
		if err != nil {
			return n, fmt.Errorf("janitor: requeue %s: %w", id, err)
		}
		n += int(r)
	}
	return n, nil
}
