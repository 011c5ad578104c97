package global

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/redisclient"
	"github.com/cellgrid/cellgrid/topology"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
)

// Config configures the global layer. Zero values are documented per field.
type Config struct {
	// Addr is the HTTP listen address; "127.0.0.1:0" picks a free port.
	Addr string
	// Cells lists the cell ids whose JetStream streams the global layer
	// sources (match results, telemetry).
	Cells []string
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

// Server is a running global layer.
type Server struct {
	cfg  Config
	deps Deps
	http *httpapi.Server
	runs []func(context.Context) error
}

// New checks the schema is current and builds the global layer.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
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
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if err := db.CheckSchema(ctx, deps.DB); err != nil {
		return nil, fmt.Errorf("global: %w", err)
	}
	s := &Server{cfg: cfg, deps: deps}
	mux := http.NewServeMux()
	deps.Topology.Register(mux)

	checks := []httpapi.Check{
		{Name: "database", Fn: func(ctx context.Context) error { return deps.DB.Ping(ctx) }},
		{Name: "redis", Fn: func(ctx context.Context) error { return redisclient.Ping(ctx, deps.Redis) }},
		{Name: "nats", Fn: func(ctx context.Context) error { return natsReady(deps.NATS) }},
	}
	hs, err := httpapi.NewServer(cfg.Addr, mux, deps.Registry, checks, deps.Log.With("component", "global-http"))
	if err != nil {
		return nil, fmt.Errorf("global: %w", err)
	}
	s.http = hs
	return s, nil
}

func natsReady(nc *nats.Conn) error {
	if !nc.IsConnected() {
		return fmt.Errorf("nats: %s", nc.Status())
	}
	return nil
}

// URL is the base URL of the global API.
func (s *Server) URL() string { return s.http.URL() }

// Run serves until ctx is cancelled, then stops every component and
// returns once all of them have ended.
func (s *Server) Run(ctx context.Context) error {
	s.http.Start()
	s.deps.Log.Info("global layer serving", "url", s.URL())
	var wg sync.WaitGroup
	errs := make(chan error, len(s.runs))
	for _, run := range s.runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}()
	}
	<-ctx.Done()
	err := s.http.Close()
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	return err
}
