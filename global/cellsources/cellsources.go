package cellsources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cellgrid/cellgrid/internal/supervise"
	"github.com/cellgrid/cellgrid/topology"
)

// Sink is a global stream that sources one stream per cell (the results
// consumer, the telemetry sink). AddCell must be idempotent and safe for
// concurrent use.
type Sink interface {
	AddCell(ctx context.Context, cell string) error
}

// Config of the follower.
type Config struct {
	// RetryDelay is the pause before trying a failed AddCell again
	// (default 1s).
	RetryDelay time.Duration
}

// DefaultConfig returns every default.
func DefaultConfig() Config { return Config{RetryDelay: time.Second} }

// Deps of the follower.
type Deps struct {
	Topology *topology.Registry // required
	// Sinks gain every cell the topology learns of, by name (for logs).
	Sinks map[string]Sink
	Log   *slog.Logger
}

// Follower adds each cell the topology learns of to every sink.
type Follower struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	life supervise.Lifecycle
}

// New checks cfg and deps; no I/O.
func New(cfg Config, deps Deps) (*Follower, error) {
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultConfig().RetryDelay
	}
	if deps.Topology == nil || len(deps.Sinks) == 0 {
		return nil, errors.New("cellsources: Deps.Topology and Sinks required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Follower{cfg: cfg, deps: deps, log: deps.Log.With("component", "cell sources")}, nil
}

// Run follows the topology until ctx ends or Close is called, and returns
// nil then. A cell whose sources could not be added (NATS unreachable) is
// tried again after RetryDelay; the others are not held up.
func (f *Follower) Run(ctx context.Context) error {
	ctx, done := f.life.Start(ctx)
	defer done()
	// added[sink][cell]: sources in place.
	added := map[string]map[string]bool{}
	for name := range f.deps.Sinks {
		added[name] = map[string]bool{}
	}
	skipped := map[string]bool{}
	for {
		changed := f.deps.Topology.Changed() // before Cells: no addition is missed
		pending := false
		for _, c := range f.deps.Topology.Cells() {
			if err := validID(c.ID); err != nil {
				if !skipped[c.ID] {
					skipped[c.ID] = true
					f.log.Warn("cell id cannot name a stream source: not sourced", "cell", c.ID, "err", err)
				}
				continue
			}
			for name, sink := range f.deps.Sinks {
				if added[name][c.ID] {
					continue
				}
				if err := sink.AddCell(ctx, c.ID); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					pending = true
					f.log.Warn("source cell: will retry", "cell", c.ID, "sink", name, "err", err)
					continue
				}
				added[name][c.ID] = true
				f.log.Info("sourcing cell", "cell", c.ID, "sink", name)
			}
		}
		var retry <-chan time.Time
		if pending {
			retry = time.After(f.cfg.RetryDelay)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry:
		}
	}
}

// Close stops a running Run and waits for it. Safe to call twice.
func (f *Follower) Close() error {
	f.life.Close()
	return nil
}

// validID rejects cell ids that are not one NATS subject token (the
// sources filter on match.<cell>.result).
func validID(id string) error {
	if id == "" || strings.ContainsAny(id, ".*> \t\r\n") {
		return fmt.Errorf("invalid cell id %q", id)
	}
	return nil
}
