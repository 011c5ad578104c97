package global

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/global/achievement"
	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/global/cellsources"
	"github.com/cellgrid/cellgrid/global/lag"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/ops"
	"github.com/cellgrid/cellgrid/global/payment"
	"github.com/cellgrid/cellgrid/global/profile"
	"github.com/cellgrid/cellgrid/global/results"
	"github.com/cellgrid/cellgrid/global/revocation"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/global/telemetry"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/redisclient"
	"github.com/cellgrid/cellgrid/internal/supervise"
	"github.com/cellgrid/cellgrid/topology"
)

// Config configures the global layer. DefaultConfig sets every default;
// a zero field of a Config passed to New takes the default.
type Config struct {
	// Addr is the HTTP listen address; port 0 picks a free one (read it
	// back with URL). Default 127.0.0.1:0.
	Addr string
	// OpsAddr is the ops listener's address: /metrics and /readyz with
	// each check's error text (the public /readyz names failing checks
	// only). Keep it on loopback or a private network; port 0 picks a
	// free one (read it back with OpsURL). Default 127.0.0.1:0.
	OpsAddr string
	// PublicURL is the URL clients and cells reach the global layer at; it
	// is the access tokens' issuer. Empty means the listen URL.
	PublicURL string
	// CellTimeout is how long a cell may miss heartbeats before the
	// topology marks it failed (default 5 s).
	CellTimeout time.Duration
	// Cells lists the cell ids whose JetStream streams the global layer
	// sources (match results, telemetry) from the start. Optional: every
	// cell the topology learns of later (its first heartbeat, or the
	// Consul catalog) is sourced too, without a restart.
	Cells []string
	// Auth configures login and tokens; Issuer is filled from PublicURL.
	Auth auth.Config
	// Store configures the catalog, currencies and the starting grant.
	Store store.Config
	// Leaderboards are the board definitions; Regions maps cell id to region
	// (a cell's own id when absent).
	Leaderboards leaderboard.Config
	// Achievements are the achievement definitions and storage limits.
	Achievements achievement.Config
	// Results sets the XP, level and currency rewards of match results;
	// Cells is filled from Config.Cells.
	Results results.Config
	// Telemetry sets the sink and anomaly rules; Cells is filled in.
	Telemetry telemetry.Config
	// Payment configures the Stripe webhook; without a webhook secret the
	// route is not mounted.
	Payment payment.Config
	// UnreadyLinger is how long the API keeps answering after a component
	// died, with /readyz 503 naming it, before Run returns the failure
	// (health checkers see it before the listener closes). Default 2s.
	UnreadyLinger time.Duration
	// Ops configures roles and the /ops console (global/ops).
	Ops ops.Config
}

// Deps are the shared clients the global layer runs on.
type Deps struct {
	DB       *pgxpool.Pool
	Redis    rueidis.Client
	NATS     *nats.Conn
	Topology *topology.Registry
	Log      *slog.Logger
	Registry *prometheus.Registry
}

// DefaultConfig returns every default in one place; the game
// configuration (Store, Leaderboards, …) has none beyond its own
// packages' defaults.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0", CellTimeout: 5 * time.Second, UnreadyLinger: 2 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.OpsAddr == "" {
		c.OpsAddr = d.OpsAddr
	}
	if c.CellTimeout <= 0 {
		c.CellTimeout = d.CellTimeout
	}
	if c.UnreadyLinger <= 0 {
		c.UnreadyLinger = d.UnreadyLinger
	}
	return c
}

// Server is a running global layer.
type Server struct {
	cfg    Config
	deps   Deps
	http   *httpapi.Server // public: the API, terse /readyz
	ops    *httpapi.Server // ops: /metrics, detailed /readyz
	issuer string
	// group runs the components; its health is the "components"
	// readiness check, so a dead one turns /readyz red.
	group supervise.Group
	life  supervise.Lifecycle
}

// New checks cfg and deps, binds the HTTP listener (so URL answers at
// once) and builds every component; it does no other I/O (the schema
// check is the caller's, see cmd/cellgrid). Nothing runs until Run; a
// Server that is never run must be closed with Close.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.withDefaults()
	if deps.DB == nil || deps.Redis == nil || deps.NATS == nil {
		return nil, errors.New("global: DB, Redis and NATS are required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = httpapi.NewRegistry()
	}
	if deps.Topology == nil {
		deps.Topology = topology.NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps}
	mux := httpapi.NewRouter()

	checks := []httpapi.Check{
		{Name: "database", Fn: func(ctx context.Context) error { return deps.DB.Ping(ctx) }},
		{Name: "redis", Fn: func(ctx context.Context) error { return redisclient.Ping(ctx, deps.Redis) }},
		{Name: "nats", Fn: func(ctx context.Context) error { return natsReady(deps.NATS) }},
		{Name: "components", Fn: s.group.Check},
	}
	hs, err := httpapi.New(httpapi.Config{Addr: cfg.Addr, Public: true}, httpapi.Deps{Handler: mux, Registry: deps.Registry, Checks: checks, Log: deps.Log.With("component", "global-http")})
	if err != nil {
		return nil, fmt.Errorf("global: %w", err)
	}
	s.http = hs
	ops, err := httpapi.New(httpapi.Config{Addr: cfg.OpsAddr}, httpapi.Deps{Registry: deps.Registry, Checks: checks, Log: deps.Log.With("component", "global-ops-http")})
	if err != nil {
		_ = hs.Close()
		return nil, fmt.Errorf("global: ops listener: %w", err)
	}
	s.ops = ops
	if err := s.build(mux); err != nil {
		_ = hs.Close()
		_ = ops.Close()
		return nil, err
	}
	return s, nil
}

// build creates every component and mounts its routes on mux.
func (s *Server) build(mux *httpapi.Router) error {
	cfg, deps := s.cfg, s.deps
	if cfg.PublicURL == "" {
		cfg.PublicURL = s.http.URL()
	}
	// Each part names itself (component=store, auth, ...); adding the
	// attribute here too printed it twice.
	logFor := func(string) *slog.Logger { return deps.Log }

	accessTTL := cfg.Auth.AccessTTL
	if accessTTL <= 0 {
		accessTTL = auth.DefaultAccessTTL
	}
	revoker, err := revocation.New(revocation.Config{AccessTTL: accessTTL}, revocation.Deps{NATS: deps.NATS, DB: deps.DB, Log: deps.Log.With("component", "revocation")})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	st, err := store.New(cfg.Store, store.Deps{DB: deps.DB, Log: logFor("store"), Metrics: deps.Registry})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	authCfg := cfg.Auth
	authCfg.Issuer = cfg.PublicURL
	var opsLayer *ops.Ops // built below; roles are recorded at login
	a, err := auth.New(authCfg, auth.Deps{
		DB: deps.DB, Log: logFor("auth"), Metrics: deps.Registry,
		OnNewPlayer: st.GrantStarting,
		OnRevoke: func(family, _ uuid.UUID, reason string) {
			revoker.Revoke(family.String(), "", reason)
		},
		OnLogin: func(ctx context.Context, tx pgx.Tx, id uuid.UUID, iss string, claims json.RawMessage) error {
			return opsLayer.OnLogin(ctx, tx, id, iss, claims)
		},
	})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	prof, err := profile.New(profile.Config{EncryptionKey: cfg.Auth.EncryptionKey}, profile.Deps{DB: deps.DB, Log: logFor("profile"), Metrics: deps.Registry,
		OnErase: func(id uuid.UUID) { revoker.Revoke("", id.String(), "erasure") }})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	lbCfg := cfg.Leaderboards
	if lbCfg.Regions == nil {
		lbCfg.Regions = map[string]string{}
	}
	for _, c := range cfg.Cells {
		if _, ok := lbCfg.Regions[c]; !ok {
			lbCfg.Regions[c] = c
		}
	}
	lb, err := leaderboard.New(lbCfg, leaderboard.Deps{DB: deps.DB, Redis: deps.Redis, Log: logFor("leaderboard"), Metrics: deps.Registry})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	ach, err := achievement.New(cfg.Achievements, achievement.Deps{DB: deps.DB, Log: logFor("achievement"), Metrics: deps.Registry})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return fmt.Errorf("global: jetstream: %w", err)
	}
	resCfg := cfg.Results
	resCfg.Cells = cfg.Cells
	res, err := results.New(resCfg, results.Deps{DB: deps.DB, JS: js, Leaderboards: lb, Achievements: ach, Log: logFor("results"), Metrics: deps.Registry})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	telCfg := cfg.Telemetry
	telCfg.Cells = cfg.Cells
	tel, err := telemetry.New(telCfg, telemetry.Deps{DB: deps.DB, JS: js, Log: logFor("telemetry"), Metrics: deps.Registry})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}

	failover, err := topology.NewFailover(topology.FailoverConfig{}, topology.FailoverDeps{NATS: deps.NATS, Registry: deps.Topology, Log: deps.Log.With("component", "failover")})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	if opsLayer, err = ops.New(cfg.Ops, ops.Deps{DB: deps.DB, NATS: deps.NATS, Topology: deps.Topology,
		Leaderboards: lb, Store: st, Regions: failover, Log: logFor("ops"), Metrics: deps.Registry}); err != nil {
		return fmt.Errorf("global: %w", err)
	}

	httpapi.RegisterCollector(deps.Registry, lag.New(js, nil, logFor("lag")))

	requireAuth := a.Verifier().Middleware
	mux.Handle("GET /openapi.json", httpapi.ServeDocument(openAPIDocument))
	deps.Topology.Register(mux)
	a.Register(mux, requireAuth)
	prof.Register(mux, requireAuth)
	st.Register(mux, requireAuth)
	lb.Register(mux, requireAuth)
	ach.Register(mux, requireAuth)
	tel.Register(mux, requireAuth)
	opsLayer.Register(mux, requireAuth)
	if cfg.Payment.StripeWebhookSecret != "" {
		payCfg := cfg.Payment
		if payCfg.Currencies == nil {
			payCfg.Currencies = cfg.Store.Currencies
		}
		pay, err := payment.New(payCfg, payment.Deps{DB: deps.DB, Log: logFor("payment"), Metrics: deps.Registry})
		if err != nil {
			return fmt.Errorf("global: %w", err)
		}
		pay.Register(mux, nil)
	}
	sources, err := cellsources.New(cellsources.DefaultConfig(), cellsources.Deps{
		Topology: deps.Topology, Sinks: map[string]cellsources.Sink{"results": res, "telemetry": tel}, Log: logFor("cell sources"),
	})
	if err != nil {
		return fmt.Errorf("global: %w", err)
	}
	watch := func(ctx context.Context) error {
		return deps.Topology.Watch(ctx, deps.NATS, cfg.CellTimeout, deps.Log.With("component", "topology"))
	}
	s.group.AddLingering("http", cfg.UnreadyLinger, s.http.Run)
	s.group.AddLingering("ops http", cfg.UnreadyLinger, s.ops.Run)
	s.group.Add("leaderboard seasons", lb.Run)
	s.group.Add("results", res.Run)
	s.group.Add("telemetry sink", tel.Run)
	s.group.Add("topology watch", watch)
	s.group.Add("revocations", revoker.Run)
	s.group.Add("cell sources", sources.Run)
	s.group.Add("ops fleet view", opsLayer.Run)
	s.group.Add("region failover", failover.Run)
	s.issuer = cfg.PublicURL
	return nil
}

// Issuer is the iss of the access tokens this layer signs; cells verify
// against Issuer() and JWKSURL().
func (s *Server) Issuer() string { return s.issuer }

// JWKSURL is where the public signing keys are published.
func (s *Server) JWKSURL() string { return s.issuer + "/.well-known/jwks.json" }

func natsReady(nc *nats.Conn) error {
	if !nc.IsConnected() {
		return fmt.Errorf("nats: %s", nc.Status())
	}
	return nil
}

// URL is the base URL of the global API.
func (s *Server) URL() string { return s.http.URL() }

// OpsURL is the ops listener's base URL (/metrics, detailed /readyz).
func (s *Server) OpsURL() string { return s.ops.URL() }

// Run serves and runs every component until ctx ends, Close is called
// or one of them fails: the first failure stops the others, turns /readyz
// red while they wind down, and is returned (with any other failure,
// joined), so the process exits non-zero. It returns once every
// component has ended.
func (s *Server) Run(ctx context.Context) error {
	ctx, done := s.life.Start(ctx)
	defer done()
	s.deps.Log.Info("global layer serving", "url", s.URL(), "ops", s.OpsURL())
	return s.group.Run(ctx)
}

// Close stops a running Run and waits for it, or releases the listener
// of a Server that was never run. Safe to call twice.
func (s *Server) Close() error {
	s.life.Close()
	return errors.Join(s.http.Close(), s.ops.Close())
}
