package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CheckFailing is what a Public listener's /readyz says of a failing
// check (the ops listener says why).
const CheckFailing = "failing"

// Check is one readiness check (database, Redis, NATS…).
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Config configures a Server. DefaultConfig sets every default; a zero
// field of a Config passed to New takes the default.
type Config struct {
	// Addr is the listen address; port 0 picks a free one (read it back
	// with Addr or URL). Default 127.0.0.1:0.
	Addr string
	// ReadyTimeout bounds one /readyz answer (all checks). Default 2s.
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown in Close. Default 5s.
	ShutdownTimeout time.Duration
	// Public marks a listener the Internet reaches: /readyz names each
	// check with "ok" or "failing" only (error text carries addresses and
	// internals) and /metrics is not served (404). The zero value is an
	// ops listener: /readyz with each check's error, and /metrics. A
	// process serving clients runs both, the ops one on loopback or a
	// private network.
	Public bool
	// Connection timeouts, so a slow or stalled client (slowloris) holds a
	// connection for a bounded time and costs nobody else:
	// ReadHeaderTimeout bounds reading a request's headers (default 5s),
	// ReadTimeout the whole request, body included (default 15s),
	// WriteTimeout from the end of the headers to the end of the response
	// (default 30s; the one stream, global/ops's event stream, moves its
	// own deadlines with http.ResponseController), and IdleTimeout a
	// kept-alive connection between requests (default 60s).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// DefaultConfig returns every default in one place.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:0",
		ReadyTimeout:      2 * time.Second,
		ShutdownTimeout:   5 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = d.ReadyTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	return c
}

// Deps are what a Server serves. All are optional.
type Deps struct {
	// Handler serves every path but /healthz, /readyz and /metrics.
	Handler http.Handler
	// Registry is served at /metrics (not on a Public listener); nil
	// makes NewRegistry's.
	Registry *prometheus.Registry
	// Checks run on every /readyz.
	Checks []Check
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Server serves a mux plus /healthz, /readyz and /metrics.
type Server struct {
	Registry  *prometheus.Registry
	routes    *Router // every pattern served, for Routes
	cfg       Config
	srv       *http.Server
	ln        net.Listener
	log       *slog.Logger
	done      chan struct{} // closed when Serve has returned
	err       error         // Serve's failure; written before done closes
	startOnce sync.Once
	started   bool // set inside startOnce
	once      sync.Once
}

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// New listens on cfg.Addr and prepares to serve deps.Handler. /healthz
// answers 200 while the process runs; /readyz runs deps.Checks within
// cfg.ReadyTimeout and answers 503 when any fails, naming each check with
// "ok" or its error ("failing" on a Public listener). Nothing is served
// until Run (or Start); a Server that is never run must be closed with
// Close.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	reg := deps.Registry
	if reg == nil {
		reg = NewRegistry()
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	checks := deps.Checks
	mux := NewRouter()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.ReadyTimeout)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				status[c.Name] = err.Error()
				if cfg.Public {
					status[c.Name] = CheckFailing
				}
				code = http.StatusServiceUnavailable
			} else {
				status[c.Name] = "ok"
			}
		}
		WriteJSON(w, code, status)
	})
	if !cfg.Public {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	}
	if deps.Handler != nil {
		mux.Handle("/", deps.Handler)
	}
	s := &Server{
		Registry: reg,
		cfg:      cfg,
		routes:   mux,
		ln:       ln,
		log:      log,
		done:     make(chan struct{}),
		srv: &http.Server{
			Handler:           JSONErrors(mux), // 404/405 as the JSON envelope too
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Start serves in the background; a second call does nothing. Most
// callers use Run instead.
func (s *Server) Start() {
	s.startOnce.Do(func() {
		s.started = true
		go func() {
			defer close(s.done)
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.err = fmt.Errorf("http serve %s: %w", s.Addr(), err)
				s.log.Error("http server stopped", "addr", s.Addr(), "err", err)
			}
		}()
	})
}

// Run serves until ctx ends or serving fails, then shuts down gracefully
// (Close) and returns Serve's failure, or nil on a clean stop.
func (s *Server) Run(ctx context.Context) error {
	s.Start()
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	return s.Close()
}

// Close shuts the server down gracefully (Config.ShutdownTimeout), then
// waits for Serve to return; a server never started just closes its
// listener. It returns Serve's failure, if any. Safe to call twice.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.startOnce.Do(func() {}) // no Start after Close
		if !s.started {
			_ = s.ln.Close()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.done
	})
	if !s.started {
		return nil
	}
	<-s.done
	return s.err
}
