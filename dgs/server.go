package dgs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/dgs/arena"
	"github.com/cellgrid/cellgrid/dgs/sdk"
	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/proto/events"
)

// ServerConfig is what `cellgrid dgs` passes to RunServer (its flags). Zero
// values mean the defaults written next to each field.
type ServerConfig struct {
	Cell    string // required
	ID      string // required: unique in the cell
	Version string

	// NATSURL is the cell's NATS; ignored when NATS is set.
	NATSURL string
	// NATS is an existing connection to use (dev mode, tests). RunServer
	// does not close it.
	NATS *nats.Conn
	// NATSCreds is this server's NATS credential: a .creds path or the
	// .creds text (the launcher passes it in env CELLGRID_NATS_CREDS);
	// NATSCA a PEM file of the CAs to trust when NATS uses TLS.
	NATSCreds, NATSCA string

	// GameListen is the UDP host:port of the game socket; port 0 picks a
	// free one. Default "127.0.0.1:0".
	GameListen string
	// AdvertiseHost is the host put in the heartbeat's GameAddr. Default:
	// the GameListen host, or 127.0.0.1 when that is unspecified (0.0.0.0,
	// ::, empty). The port is always the one actually bound.
	AdvertiseHost string

	TickRate       int           // 30
	ScoreLimit     int           // 10
	TimeLimit      time.Duration // 3 min
	WaitForPlayers time.Duration // 30 s
	HealthInterval time.Duration // 1 s

	// ExitAfterMatch makes RunServer return after one match instead of
	// going back to Ready (fleet reuse, the default).
	ExitAfterMatch bool

	// MetricsAddr, when set, serves /healthz, /readyz and /metrics there
	// ("127.0.0.1:0" picks a free port). Empty: no HTTP listener.
	MetricsAddr string
	// ResultTimeout bounds one attempt to publish a match result (the
	// JetStream ack wait). Default 5 s. A result is retried, with backoff
	// up to ResultRetryMax (default 5 s), until it is published: through
	// NATS outages of any length, the server does not go back to Ready
	// (nor exit on a shutdown request) with a result unpublished.
	ResultTimeout, ResultRetryMax time.Duration
	// ResultSpool, when set, is a folder where a result waits on disk
	// until published, so a restarted server (same folder) publishes what
	// its previous run could not.
	ResultSpool string

	Log *slog.Logger // slog.Default()
}

func (c *ServerConfig) setDefaults() error {
	if c.Cell == "" || c.ID == "" {
		return errors.New("dgs: Cell and ID are required")
	}
	if c.NATS == nil && c.NATSURL == "" {
		return errors.New("dgs: NATSURL (or NATS) is required")
	}
	if c.GameListen == "" {
		c.GameListen = "127.0.0.1:0"
	}
	if c.ResultTimeout <= 0 {
		c.ResultTimeout = 5 * time.Second
	}
	if c.ResultRetryMax <= 0 {
		c.ResultRetryMax = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// RunServer runs one dedicated game server: it binds the game socket,
// announces itself Ready on the cell's NATS, plays the matches it is
// allocated (the arena game), publishes each result exactly once and goes
// back to Ready — until ctx is cancelled, a shutdown request arrives (it
// then stops after the current match) or, with ExitAfterMatch, one match has
// been played. It publishes the shutdown state before returning and returns
// nil on any of those; every goroutine it started has ended by then.
func RunServer(ctx context.Context, cfg ServerConfig) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	log := cfg.Log.With("dgs", cfg.ID, "cell", cfg.Cell)
	nc := cfg.NATS
	if nc == nil {
		var err error
		auth, err := natsauth.ClientFlags{Creds: cfg.NATSCreds, CA: cfg.NATSCA}.Options()
		if err != nil {
			return fmt.Errorf("dgs: %w", err)
		}
		nc, err = nats.Connect(cfg.NATSURL, append([]nats.Option{nats.Name("dgs-" + cfg.ID), nats.MaxReconnects(-1)}, auth...)...)
		if err != nil {
			return fmt.Errorf("dgs: nats %s: %w", cfg.NATSURL, err)
		}
		defer nc.Close()
	}

	pc, err := net.ListenPacket("udp", cfg.GameListen)
	if err != nil {
		return fmt.Errorf("dgs: game socket %s: %w", cfg.GameListen, err)
	}
	gameAddr, err := advertised(cfg, pc.LocalAddr())
	if err != nil {
		pc.Close()
		return err
	}

	results := make(chan events.MatchResult, 4)
	game, err := arena.New(arena.Config{
		Cell: cfg.Cell, ID: cfg.ID,
		TickRate: cfg.TickRate, ScoreLimit: cfg.ScoreLimit,
		TimeLimit: cfg.TimeLimit, WaitForPlayers: cfg.WaitForPlayers,
		OnMatchEnd: func(r events.MatchResult) { results <- r },
		Log:        log,
	}, pc)
	if err != nil {
		return fmt.Errorf("dgs: %w", err)
	}
	kit, err := sdk.New(sdk.Config{
		Cell: cfg.Cell, ID: cfg.ID, Version: cfg.Version, GameAddr: gameAddr,
		NATS: nc, HealthInterval: cfg.HealthInterval, Log: log,
	})
	if err != nil {
		game.Close()
		return fmt.Errorf("dgs: %w", err)
	}
	rep := &reporter{kit: kit, spool: cfg.ResultSpool, attempt: cfg.ResultTimeout, retryMax: cfg.ResultRetryMax, log: log}
	shutdownAsked := make(chan struct{}, 1)
	kit.HandleAllocate(game.StartMatch)
	kit.HandleCancel(func(a events.Allocation) { game.CancelMatch(a.SessionID) })
	kit.HandleShutdownRequest(func() {
		select {
		case shutdownAsked <- struct{}{}:
		default:
		}
	})

	gameCtx, stopGame := context.WithCancel(context.Background())
	sdkCtx, stopSDK := context.WithCancel(context.Background())
	gameDone, sdkDone := make(chan struct{}), make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(gameDone)
		_ = game.Run(gameCtx) // returns only once stopped
	}()
	go func() {
		defer close(sdkDone)
		if err := kit.Run(sdkCtx); err != nil && !errors.Is(err, context.Canceled) {
			failed <- fmt.Errorf("dgs: sdk: %w", err)
		}
	}()
	// stop ends the game first (a running match ends as abandoned and its
	// result is still published), then announces the shutdown state and
	// stops the SDK.
	stop := func(runErr error) error {
		if !game.Busy() {
			// Between matches: let the last match's streams deliver END.
			sctx, scancel := context.WithTimeout(context.Background(), settleTimeout)
			game.Settle(sctx)
			scancel()
		}
		stopGame()
		<-gameDone
		for done := false; !done; {
			select {
			case r := <-results:
				lctx, lcancel := context.WithTimeout(context.Background(), cfg.ResultTimeout)
				rep.report(lctx, r)
				lcancel()
			default:
				done = true
			}
		}
		if err := kit.Shutdown(); err != nil {
			log.Warn("dgs: publish shutdown state", "err", err)
		}
		stopSDK()
		<-sdkDone
		return runErr
	}

	// Results a previous run of this server could not publish go first.
	if err := rep.flushSpool(ctx); err != nil {
		return stop(err)
	}
	if cfg.MetricsAddr != "" {
		ms, err := startMetrics(cfg.MetricsAddr, game, kit, nc, log)
		if err != nil {
			return stop(err)
		}
		defer ms.Close()
		log.Info("dgs metrics", "url", ms.URL())
	}
	if err := kit.Ready(); err != nil {
		return stop(fmt.Errorf("dgs: ready: %w", err))
	}
	log.Info("dgs ready", "game_addr", gameAddr)
	draining := false
	for {
		select {
		case <-ctx.Done():
			return stop(nil)
		case err := <-failed:
			return stop(err)
		case r := <-results:
			if !rep.report(ctx, r) {
				// Interrupted (SIGTERM) with the result unpublished: one
				// last attempt; the spool (if any) keeps it for the next run.
				lctx, lcancel := context.WithTimeout(context.Background(), cfg.ResultTimeout)
				rep.report(lctx, r)
				lcancel()
				return stop(nil)
			}
			if draining || cfg.ExitAfterMatch {
				return stop(nil)
			}
			if err := kit.Ready(); err != nil {
				return stop(fmt.Errorf("dgs: ready: %w", err))
			}
		case <-shutdownAsked:
			draining = true
			if state, _ := kit.State(); state != events.DGSAllocated {
				return stop(nil)
			}
			log.Info("dgs: shutdown requested, stopping after the match")
		}
	}
}

// settleTimeout bounds how long a stopping server waits for the last match's
// streams to finish lingering (arena's default Linger).
const settleTimeout = 5 * time.Second

func advertised(cfg ServerConfig, local net.Addr) (string, error) {
	ua, ok := local.(*net.UDPAddr)
	if !ok {
		return "", fmt.Errorf("dgs: game socket address %v is not UDP", local)
	}
	host := cfg.AdvertiseHost
	if host == "" {
		h, _, err := net.SplitHostPort(cfg.GameListen)
		if err != nil {
			return "", fmt.Errorf("dgs: game listen %q: %w", cfg.GameListen, err)
		}
		host = h
		if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(ua.Port)), nil
}
