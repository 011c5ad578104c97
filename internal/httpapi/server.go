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

// Check is one readiness check (database, Redis, NATS…).
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Server serves a mux plus /healthz, /readyz and /metrics.
type Server struct {
	Registry *prometheus.Registry
	routes   *Router // every pattern served, for Routes
	srv      *http.Server
	ln       net.Listener
	log      *slog.Logger
	done     chan struct{}
	err      error
	once     sync.Once
}

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewServer listens on addr (":0" or "127.0.0.1:0" picks a free port) and
// prepares to serve app. /healthz answers 200 while the process runs;
// /readyz runs checks with a 2 s budget and answers 503 on the first failure.
func NewServer(addr string, app http.Handler, reg *prometheus.Registry, checks []Check, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if reg == nil {
		reg = NewRegistry()
	}
	if log == nil {
		log = slog.Default()
	}
	mux := NewRouter()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				status[c.Name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[c.Name] = "ok"
			}
		}
		WriteJSON(w, code, status)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if app != nil {
		mux.Handle("/", app)
	}
	s := &Server{
		Registry: reg,
		routes:   mux,
		ln:       ln,
		log:      log,
		done:     make(chan struct{}),
		srv: &http.Server{
			Handler:           JSONErrors(mux), // 404/405 as the JSON envelope too
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Start serves in the background.
func (s *Server) Start() {
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
			s.log.Error("http server stopped", "addr", s.Addr(), "err", err)
		}
	}()
}

// Close shuts the server down gracefully (5 s), then waits for Serve to
// return. Safe to call twice.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		select {
		case <-s.done:
		case <-ctx.Done():
		}
	})
	return s.err
}
