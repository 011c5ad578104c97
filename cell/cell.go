package cell

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/cell/session"
	"github.com/cellgrid/cellgrid/cell/telemetry"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/redisclient"
	"github.com/cellgrid/cellgrid/internal/supervise"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/relay"
)

// Deps are what a cell needs from outside. DB, Redis and NATS are
// required; Verifier may be nil when Config.JWKSURL is set; Launcher may be
// nil for a cell that only adopts servers launched elsewhere.
type Deps struct {
	DB       *pgxpool.Pool
	Redis    rueidis.Client
	NATS     *nats.Conn
	Verifier *accesstoken.Verifier
	Launcher fleet.Launcher
	// Log defaults to slog.Default().
	Log *slog.Logger
	// Registry receives the cell's metrics and serves /metrics; nil makes
	// a fresh one.
	Registry *prometheus.Registry
}

// Cell is one running cell. Build it with New, start it with Run.
type Cell struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	key      ed25519.PrivateKey
	pubB64   string
	tickets  *matchmaker.Store
	mm       *matchmaker.Matchmaker
	fleet    *fleet.Fleet
	sessions *session.Store
	relay    *relay.Relay
	http     *httpapi.Server // public: the API, terse /readyz
	ops      *httpapi.Server // ops: /metrics, detailed /readyz
	relayPub string          // relay address handed to clients
	verifier *accesstoken.Verifier
	stopKeys context.CancelFunc // background JWKS fetches of a verifier New built

	janitor  *matchmaker.Janitor
	restorer *session.Restorer
	// markReady is c.tickets.MarkReady (a test makes it fail).
	markReady func(ctx context.Context, m matchmaker.Match, ready string, tokens map[string]string) error

	intake   *telemetry.Intake
	draining atomic.Bool
	failover atomic.Pointer[events.RegionFailover] // set while the region is failed over (region.go)
	// group runs the components; its health is the "components"
	// readiness check, so a dead one turns /readyz red.
	group supervise.Group
	life  supervise.Lifecycle

	runOnce   sync.Once
	closeOnce sync.Once
}

// New checks cfg and deps, binds the HTTP and relay sockets (so URL and
// RelayAddr answer at once) and builds every component. Nothing runs
// until Run; a Cell that is never run must be closed with Close.
func New(cfg Config, deps Deps) (*Cell, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.DB == nil || deps.Redis == nil || deps.NATS == nil {
		return nil, errors.New("cell: Deps.DB, Deps.Redis and Deps.NATS are required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = httpapi.NewRegistry()
	}
	c := &Cell{cfg: cfg, deps: deps, log: deps.Log.With("cell", cfg.ID), verifier: deps.Verifier}
	if c.verifier == nil {
		if cfg.JWKSURL == "" || cfg.GlobalIssuer == "" {
			return nil, errors.New("cell: Deps.Verifier or Config.GlobalIssuer and JWKSURL required")
		}
		kctx, cancel := context.WithCancel(context.Background())
		c.stopKeys = cancel
		c.verifier = accesstoken.NewRemoteVerifier(kctx, cfg.GlobalIssuer, cfg.JWKSURL)
	}
	if len(cfg.ConnectKeySeed) == ed25519.SeedSize {
		c.key = ed25519.NewKeyFromSeed(cfg.ConnectKeySeed)
	} else {
		c.log.Warn("no connect key seed configured: using a random key (tokens die with this process)")
		if _, c.key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
	}
	pub := c.key.Public().(ed25519.PublicKey)
	c.pubB64 = base64.StdEncoding.EncodeToString(pub)

	if c.tickets, err = matchmaker.NewStore(deps.Redis, cfg.ID, cfg.GameModes, cfg.Matchmaker.Now); err != nil {
		return nil, c.fail(err)
	}
	if c.mm, err = matchmaker.New(cfg.Matchmaker, matchmaker.Deps{Store: c.tickets, Handler: c.handleMatch, Log: c.log}); err != nil {
		return nil, c.fail(err)
	}
	c.markReady = c.tickets.MarkReady
	jc := cfg.Janitor
	if jc.Deadline <= 0 {
		// A live allocation may take HandlerTimeout: never requeue it.
		mc := cfg.Matchmaker
		if mc.HandlerTimeout <= 0 {
			mc.HandlerTimeout = matchmaker.DefaultConfig().HandlerTimeout
		}
		jc.Deadline = max(matchmaker.DefaultJanitorConfig().Deadline, 3*mc.HandlerTimeout)
	}
	if c.janitor, err = matchmaker.NewJanitor(jc, matchmaker.JanitorDeps{Store: c.tickets, Log: c.log}); err != nil {
		return nil, c.fail(err)
	}
	fc := cfg.Fleet
	fc.Cell, fc.Version = cfg.ID, cfg.DGS
	if fc.NATSURL = cfg.NATSURL; fc.NATSURL == "" {
		fc.NATSURL = deps.NATS.ConnectedUrl()
	}
	if c.fleet, err = fleet.New(fc, fleet.Deps{NATS: deps.NATS, Launcher: deps.Launcher, Log: c.log, Metrics: deps.Registry}); err != nil {
		return nil, c.fail(err)
	}
	if c.sessions, err = session.New(session.Config{Cell: cfg.ID, Region: cfg.Region, LiveTTL: cfg.SessionLiveTTL},
		session.Deps{Redis: deps.Redis, DB: deps.DB, NATS: deps.NATS, Log: c.log}); err != nil {
		return nil, c.fail(err)
	}

	if c.restorer, err = session.NewRestorer(session.RestorerConfig{Cell: cfg.ID, Region: cfg.Region, LiveTTL: cfg.SessionLiveTTL, Interval: cfg.SessionRestoreInterval},
		session.RestorerDeps{Redis: deps.Redis, DB: deps.DB, Log: c.log}); err != nil {
		return nil, c.fail(err)
	}

	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, c.fail(fmt.Errorf("cell: jetstream: %w", err))
	}
	if c.intake, err = telemetry.New(withCell(cfg.Telemetry, cfg.ID), telemetry.Deps{JS: js, Log: c.log, Metrics: deps.Registry}); err != nil {
		return nil, c.fail(err)
	}

	pc, err := net.ListenPacket("udp", cfg.RelayAddr)
	if err != nil {
		return nil, c.fail(fmt.Errorf("cell: relay socket: %w", err))
	}
	tv, err := connecttoken.NewVerifier(pub)
	if err != nil {
		pc.Close()
		return nil, c.fail(err)
	}
	c.relay, err = relay.New(cfg.Relay, relay.Deps{
		Conn: pc, Verifier: tv, Sessions: c.sessions, Replay: session.NewReplayGuard(deps.Redis, cfg.ID, cfg.ConnectTokenTTL+relayLeeway(cfg.Relay)),
		Log: c.log, Metrics: deps.Registry,
	})
	if err != nil {
		pc.Close()
		return nil, c.fail(err)
	}
	c.relayPub = cfg.RelayPublicAddr
	if c.relayPub == "" {
		c.relayPub = c.relay.Addr().String()
	}

	checks := []httpapi.Check{
		{Name: "database", Fn: func(ctx context.Context) error { return deps.DB.Ping(ctx) }},
		{Name: "redis", Fn: func(ctx context.Context) error { return redisclient.Ping(ctx, deps.Redis) }},
		{Name: "nats", Fn: func(context.Context) error {
			if st := deps.NATS.Status(); st != nats.CONNECTED {
				return fmt.Errorf("nats %s", st)
			}
			return nil
		}},
		{Name: "components", Fn: c.group.Check},
	}
	if c.http, err = httpapi.New(httpapi.Config{Addr: cfg.HTTPAddr, Public: true}, httpapi.Deps{Handler: c.routes(), Registry: deps.Registry, Checks: checks, Log: c.log}); err != nil {
		_ = c.relay.Close()
		return nil, c.fail(err)
	}
	if c.ops, err = httpapi.New(httpapi.Config{Addr: cfg.OpsAddr}, httpapi.Deps{Registry: deps.Registry, Checks: checks, Log: c.log}); err != nil {
		_ = c.http.Close()
		_ = c.relay.Close()
		return nil, c.fail(fmt.Errorf("cell: ops listener: %w", err))
	}
	if c.cfg.PublicURL == "" {
		c.cfg.PublicURL = c.http.URL()
	}
	return c, nil
}

// relayLeeway is the relay's token leeway, defaulted as the relay does.
func relayLeeway(rc relay.Config) time.Duration {
	if rc.TokenLeeway > 0 {
		return rc.TokenLeeway
	}
	return relay.DefaultConfig().TokenLeeway
}

func (c *Cell) fail(err error) error {
	if c.stopKeys != nil {
		c.stopKeys()
	}
	return err
}

// URL is the cell API's base URL (http://host:port).
func (c *Cell) URL() string { return c.http.URL() }

// OpsURL is the ops listener's base URL (/metrics, detailed /readyz).
func (c *Cell) OpsURL() string { return c.ops.URL() }

// RelayAddr is the relay address handed to clients.
func (c *Cell) RelayAddr() string { return c.relayPub }

// RelayListenAddr is the relay's bound UDP address (RelayAddr differs when
// something, e.g. a WAN emulator, stands in front of it).
func (c *Cell) RelayListenAddr() string { return c.relay.Addr().String() }

// Fleet exposes the DGS pool (ops commands, tests).
func (c *Cell) Fleet() *fleet.Fleet { return c.fleet }

// ConnectPublicKey is the key DGSs and relays verify this cell's tokens with.
func (c *Cell) ConnectPublicKey() ed25519.PublicKey { return c.key.Public().(ed25519.PublicKey) }

// Run creates the match stream if missing, then serves the API and runs
// the matchmaker, fleet, relay, result consumer, telemetry intake and
// heartbeat until ctx ends, Close is called or one of them fails: the
// first failure stops the others, turns /readyz red while they wind
// down, and is returned (with any other failure, joined). It returns once
// every goroutine it started has ended, every server this process
// launched is stopped and every socket closed. Run may be called once.
func (c *Cell) Run(ctx context.Context) error {
	ran := false
	c.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("cell: Run called twice")
	}
	ctx, done := c.life.Start(ctx)
	defer done()
	defer c.fail(nil)
	if err := c.sessions.EnsureStream(ctx); err != nil {
		_ = c.relay.Close()
		_ = c.http.Close()
		_ = c.ops.Close()
		return err
	}
	if err := c.intake.EnsureStream(ctx); err != nil {
		_ = c.relay.Close()
		_ = c.http.Close()
		_ = c.ops.Close()
		return err
	}
	c.group.AddLingering("http", c.cfg.UnreadyLinger, c.http.Run)
	c.group.AddLingering("ops http", c.cfg.UnreadyLinger, c.ops.Run)
	// The fleet stops its servers last, after the matchmaker stopped
	// handing it matches.
	c.group.Add("fleet", c.fleet.Run)
	c.group.Add("matchmaker", c.mm.Run)
	c.group.Add("matchmaker janitor", c.janitor.Run)
	c.group.Add("session restorer", c.restorer.Run)
	c.group.Add("relay", c.relay.Run)
	c.group.Add("match results", c.sessions.Run)
	c.group.Add("telemetry intake", c.intake.Run)
	c.group.Add("heartbeat", c.runHeartbeat)
	c.group.Add("region watch", c.runRegionWatch)
	c.group.Add("overflow", c.runOverflow)
	c.log.Info("cell running", "api", c.URL(), "ops", c.OpsURL(), "relay", c.RelayAddr())
	return c.group.Run(ctx)
}

// Close stops a running Run and waits for it, or releases the sockets of
// a Cell that was never run. Safe to call twice.
func (c *Cell) Close() error {
	c.life.Close()
	var err error
	c.closeOnce.Do(func() {
		_ = c.relay.Close()
		_ = c.fail(nil)
		err = errors.Join(c.http.Close(), c.ops.Close())
	})
	return err
}
