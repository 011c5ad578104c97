package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/topology"
)

// Config configures the ops layer. Zero values select the defaults.
type Config struct {
	// Admins and Support hold those roles by configuration (player ids or
	// login identities); everyone else is a player unless their identity
	// provider grants a role (RolesClaim).
	Admins, Support Holders
	// RolesClaim is the ID-token claim listing the player's groups.
	// Default "groups".
	RolesClaim string
	// AdminGroups and SupportGroups are the group names in RolesClaim that
	// grant each role. Empty: identity providers grant no role.
	AdminGroups, SupportGroups []string
	// DrainTimeout bounds a drain request to a cell. Default 5 s.
	DrainTimeout time.Duration
	// StreamInterval is how often the console's event stream looks for a
	// change. Default 1 s.
	StreamInterval time.Duration
	// Leaderboard is the board whose top the console shows; default the
	// first configured board.
	Leaderboard string
	// MaxBody limits request bodies. Default 8 KiB.
	MaxBody int64
}

func (c Config) withDefaults() Config {
	if c.RolesClaim == "" {
		c.RolesClaim = "groups"
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Second
	}
	if c.StreamInterval <= 0 {
		c.StreamInterval = time.Second
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 8 << 10
	}
	return c
}

// Deps are the services ops reads and acts through.
type Deps struct {
	DB           *pgxpool.Pool
	NATS         *nats.Conn
	Topology     *topology.Registry
	Leaderboards *leaderboard.Leaderboards
	Store        *store.Store
	// Regions fails regions over; nil leaves the region routes out.
	Regions RegionOps
	Log     *slog.Logger
	// Metrics receives the topology gauge and the actions counter; nil
	// registers nowhere.
	Metrics prometheus.Registerer
}

// Ops serves the console and the admin API.
type Ops struct {
	cfg         Config
	deps        Deps
	log         *slog.Logger
	requireAuth func(http.Handler) http.Handler
	fleet       *fleetView
	actions     *prometheus.CounterVec // action, outcome
	// stopped is closed when Run returns: open event streams end then,
	// instead of holding the HTTP server's graceful shutdown.
	stopped  chan struct{}
	stopOnce sync.Once

	mu sync.Mutex
	// mu guards the cached slow parts of a snapshot.
	slow     slowParts
	slowTime time.Time
}

// New checks deps and returns the ops layer.
func New(cfg Config, deps Deps) (*Ops, error) {
	if deps.DB == nil || deps.NATS == nil || deps.Topology == nil {
		return nil, errors.New("ops: DB, NATS and Topology are required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	cfg = cfg.withDefaults()
	if cfg.Leaderboard == "" && deps.Leaderboards != nil {
		if b := deps.Leaderboards.Boards(); len(b) > 0 {
			cfg.Leaderboard = b[0].ID
		}
	}
	o := &Ops{cfg: cfg, deps: deps, log: deps.Log.With("component", "ops"), fleet: newFleetView(), stopped: make(chan struct{})}
	o.registerMetrics(deps.Metrics)
	return o, nil
}

// Register mounts the console and the ops API on mux; requireAuth
// verifies access tokens.
func (o *Ops) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	o.requireAuth = requireAuth
	mux.Handle("GET /ops", consoleHandler("console.html", "text/html; charset=utf-8"))
	mux.Handle("GET /ops/console.js", consoleHandler("console.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /ops/me", o.require(RolePlayer, o.handleMe))
	mux.Handle("GET /ops/snapshot", o.require(RolePlayer, o.handleSnapshot))
	mux.Handle("GET /ops/events", o.require(RolePlayer, o.handleEvents))
	mux.Handle("POST /ops/cells/{cellId}/drain", o.require(RoleAdmin, o.drainHandler("drain")))
	mux.Handle("POST /ops/cells/{cellId}/undrain", o.require(RoleAdmin, o.drainHandler("undrain")))
	mux.Handle("GET /ops/audit", o.require(RoleAdmin, o.handleAudit))
	mux.Handle("GET /ops/flags", o.require(RoleSupport, o.handleFlags))
	mux.Handle("POST /ops/flags/{flagId}/review", o.require(RoleSupport, o.handleReview))
	if o.deps.Regions != nil {
		mux.Handle("POST /ops/regions/{region}/failover", o.require(RoleAdmin, o.regionHandler("failover")))
		mux.Handle("POST /ops/regions/{region}/restore", o.require(RoleAdmin, o.regionHandler("restore")))
	}
	if o.deps.Leaderboards != nil {
		mux.Handle("POST /ops/leaderboards/{boardId}/records/{playerId}", o.require(RoleAdmin, o.handleCorrection))
	}
	if o.deps.Store != nil {
		mux.Handle("POST /ops/players/{playerId}/wallet", o.require(RoleAdmin, o.handleWallet))
		mux.Handle("POST /ops/players/{playerId}/items", o.require(RoleAdmin, o.handleItems))
		mux.Handle("PUT /ops/catalog/items/{itemId}", o.require(RoleAdmin, o.handleItemEdit))
	}
}

// Run follows the fleet on NATS (DGS heartbeats, session events) until
// ctx ends; the console's event streams end with it.
func (o *Ops) Run(ctx context.Context) error {
	defer o.stopOnce.Do(func() { close(o.stopped) })
	if err := o.fleet.run(ctx, o.deps.NATS); err != nil {
		return fmt.Errorf("ops: %w", err)
	}
	return nil
}
