package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/supervise"
)

// Config tunes a Matchmaker. Zero fields take the value of DefaultConfig.
type Config struct {
	// TickInterval is how often each pool is matched. Default 250ms.
	TickInterval time.Duration
	// LeaseTTL is the pool lease's lifetime; the holder renews it every
	// tick, so another process takes over at most LeaseTTL after a holder
	// died. Default 3s.
	LeaseTTL time.Duration
	// ResyncEvery reloads the whole pool into memory (dropping tickets
	// cancelled or claimed elsewhere). Default 10s.
	ResyncEvery time.Duration
	// Workers run the Handler (allocation) for formed matches concurrently;
	// Backlog bounds matches waiting for a worker. When the backlog is full,
	// a formed match is put back in the queue for a later tick.
	// Defaults 8 and 256.
	Workers int
	Backlog int
	// HandlerTimeout bounds one Handler call. Default 10s.
	HandlerTimeout time.Duration
	// Owner identifies this process in pool leases. Default a random UUID.
	Owner string
	// Now is the clock (tests pass a fake one). Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns every default in one place.
func DefaultConfig() Config {
	return Config{
		TickInterval: 250 * time.Millisecond, LeaseTTL: 3 * time.Second, ResyncEvery: 10 * time.Second,
		Workers: 8, Backlog: 256, HandlerTimeout: 10 * time.Second, Now: time.Now,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.TickInterval <= 0 {
		c.TickInterval = d.TickInterval
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = d.LeaseTTL
	}
	if c.ResyncEvery <= 0 {
		c.ResyncEvery = d.ResyncEvery
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.Backlog <= 0 {
		c.Backlog = d.Backlog
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = d.HandlerTimeout
	}
	if c.Owner == "" {
		c.Owner = uuid.NewString()
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// MatchTicket is one ticket of a Match with its players.
type MatchTicket struct {
	Entry   Entry
	Players []string
}

// Match is a claimed set of tickets waiting for a game server.
type Match struct {
	SessionID string
	Mode      GameMode
	Tickets   []MatchTicket
	Teams     [][]string // player ids per team
}

// Players returns every player of m, team by team.
func (m Match) Players() []string {
	var out []string
	for _, t := range m.Teams {
		out = append(out, t...)
	}
	return out
}

// Handler turns a claimed match into a running session (allocates a
// server, mints tokens, calls Store.MarkReady). When it returns an error
// the match's tickets go back to the queue.
type Handler func(ctx context.Context, m Match) error

// Matchmaker runs one Pool per game mode.
type Matchmaker struct {
	cfg     Config
	store   *Store
	handler Handler
	log     *slog.Logger
	pools   []*Pool
	work    chan Match
	life    supervise.Lifecycle
}

// Deps are what a Matchmaker needs. Store and Handler are required.
type Deps struct {
	// Store holds the tickets of the game modes the matchmaker runs.
	Store *Store
	// Handler turns each claimed match into a running session.
	Handler Handler
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// New returns a Matchmaker over deps.Store's game modes. Nothing runs
// until Run.
func New(cfg Config, deps Deps) (*Matchmaker, error) {
	store, h, log := deps.Store, deps.Handler, deps.Log
	if store == nil || h == nil {
		return nil, errors.New("matchmaker: store and handler are required")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	m := &Matchmaker{cfg: cfg, store: store, handler: h, log: log.With("component", "matchmaker"), work: make(chan Match, cfg.Backlog)}
	for _, mode := range store.modes {
		m.pools = append(m.pools, &Pool{mm: m, mode: mode, mirror: make(map[string]Entry)})
	}
	return m, nil
}

// Pool returns the pool of mode, or nil.
func (m *Matchmaker) Pool(mode string) *Pool {
	for _, p := range m.pools {
		if p.mode.Name == mode {
			return p
		}
	}
	return nil
}

// Run ticks every pool and runs the workers until ctx ends, then puts
// matches still waiting for a worker back in the queue, releases the
// leases and returns once every goroutine it started has ended.
func (m *Matchmaker) Run(ctx context.Context) error {
	ctx, done := m.life.Start(ctx)
	defer done()
	var pools, workers sync.WaitGroup
	for _, p := range m.pools {
		pools.Add(1)
		go func() {
			defer pools.Done()
			p.run(ctx)
		}()
	}
	stop := make(chan struct{})
	for range m.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			m.worker(context.WithoutCancel(ctx), stop)
		}()
	}
	<-ctx.Done()
	pools.Wait()
	// Workers finish the match in hand (bounded by HandlerTimeout);
	// whatever is still waiting goes back to Redis.
	close(stop)
	workers.Wait()
	bg, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		select {
		case mt := <-m.work:
			m.requeue(bg, mt)
		default:
			for _, p := range m.pools {
				_ = m.store.releaseLease(bg, p.mode.Name, m.cfg.Owner)
			}
			return nil
		}
	}
}

// Close stops a running Run and waits for it (tickets in hand go back to
// the queue); a later Run returns at once. Safe to call twice.
func (m *Matchmaker) Close() error {
	m.life.Close()
	return nil
}

func (m *Matchmaker) worker(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case mt := <-m.work:
			hctx, cancel := context.WithTimeout(ctx, m.cfg.HandlerTimeout)
			err := m.handler(hctx, mt)
			cancel()
			if err != nil {
				m.log.Warn("match not started; tickets requeued", "session", mt.SessionID, "mode", mt.Mode.Name, "err", err)
				m.requeue(ctx, mt)
			}
		}
	}
}

func (m *Matchmaker) requeue(ctx context.Context, mt Match) {
	entries := make([]Entry, len(mt.Tickets))
	for i, t := range mt.Tickets {
		entries[i] = t.Entry
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.store.Requeue(ctx, mt.Mode.Name, mt.SessionID, entries); err != nil {
		m.log.Error("requeue failed", "session", mt.SessionID, "err", err)
	}
}

// Pool is the matching state of one game mode. Only its goroutine (Run, or
// a test or benchmark calling Tick instead of Run) touches it.
type Pool struct {
	mm         *Matchmaker
	mode       GameMode
	leader     bool
	mirror     map[string]Entry // queued tickets as last read from Redis
	lastSeq    float64          // highest sequence number read
	lastResync time.Time
}

func (p *Pool) run(ctx context.Context) {
	t := time.NewTicker(p.mm.cfg.TickInterval)
	defer t.Stop()
	for {
		if _, err := p.Tick(ctx); err != nil && ctx.Err() == nil {
			p.mm.log.Warn("tick failed", "mode", p.mode.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// TickStats describes one tick.
type TickStats struct {
	Leader  bool
	Queued  int // tickets in memory after sync
	Matches int // matches claimed and handed to workers
	Expired int
	Stale   int // proposals refused because a ticket left the queue
}

// Tick holds the lease, syncs the mirror, expires old tickets, forms and
// claims matches and hands them to the workers.
func (p *Pool) Tick(ctx context.Context) (TickStats, error) {
	var st TickStats
	s := p.mm.store
	held, err := s.holdLease(ctx, p.mode.Name, p.mm.cfg.Owner, p.mm.cfg.LeaseTTL, p.leader)
	if err != nil {
		return st, err
	}
	if held != p.leader {
		p.mm.log.Info("pool lease", "mode", p.mode.Name, "held", held, "owner", p.mm.cfg.Owner)
		p.leader = held
		p.mirror = make(map[string]Entry)
		p.lastSeq = math.Inf(-1)
		p.lastResync = time.Time{}
	}
	st.Leader = held
	if !held {
		return st, nil
	}
	now := p.mm.cfg.Now()
	if now.Sub(p.lastResync) >= p.mm.cfg.ResyncEvery || now.Before(p.lastResync) {
		p.mirror = make(map[string]Entry, len(p.mirror))
		p.lastSeq = math.Inf(-1)
		p.lastResync = now
	}
	for {
		es, last, err := s.readPool(ctx, p.mode.Name, p.lastSeq, 20000)
		if err != nil {
			return st, err
		}
		p.lastSeq = last
		for _, e := range es {
			p.mirror[e.TicketID] = e
		}
		if len(es) < 20000 {
			break
		}
	}
	live := make([]Entry, 0, len(p.mirror))
	for id, e := range p.mirror {
		if now.Sub(e.CreatedAt) > p.mode.TicketTTL {
			if err := s.expire(ctx, p.mode.Name, e); err != nil {
				return st, err
			}
			delete(p.mirror, id)
			st.Expired++
			continue
		}
		live = append(live, e)
	}
	st.Queued = len(live)
	for _, f := range Form(p.mode, now, live) {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		sid := uuid.NewString()
		players, stale, err := s.Claim(ctx, p.mode.Name, sid, f.Tickets)
		if err != nil {
			return st, err
		}
		if stale >= 0 {
			delete(p.mirror, f.Tickets[stale].TicketID)
			st.Stale++
			continue
		}
		mt := Match{SessionID: sid, Mode: p.mode, Tickets: make([]MatchTicket, len(f.Tickets)), Teams: make([][]string, len(f.Teams))}
		for i, e := range f.Tickets {
			mt.Tickets[i] = MatchTicket{Entry: e, Players: players[i]}
			delete(p.mirror, e.TicketID)
		}
		for ti, idx := range f.Teams {
			for _, i := range idx {
				mt.Teams[ti] = append(mt.Teams[ti], players[i]...)
			}
		}
		select {
		case p.mm.work <- mt:
			st.Matches++
		default:
			// Overload: every worker is busy and the backlog is full.
			// The tickets wait in Redis for a later tick.
			p.mm.requeue(ctx, mt)
		}
	}
	return st, nil
}

// Leader reports whether the pool held its lease at the last tick.
func (p *Pool) Leader() bool { return p.leader }

// String names the pool.
func (p *Pool) String() string { return fmt.Sprintf("pool(%s)", p.mode.Name) }
