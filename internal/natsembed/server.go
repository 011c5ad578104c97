package natsembed

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/proto/natscreds"
)

// Config describes one embedded server. Zero ports mean "pick a free one";
// the chosen addresses can be read back from the Server.
type Config struct {
	// Cluster is the NATS cluster (and gateway) name: a cell id or "global".
	Cluster string
	// Name is the server name; defaults to Cluster.
	Name string
	// Host to bind; defaults to 127.0.0.1.
	Host        string
	Port        int
	ClusterPort int
	GatewayPort int
	// Gateways maps remote cluster names to one of their gateway URLs
	// (nats://host:port). One remote is enough; the others are discovered.
	Gateways map[string]string
	// StoreDir is the JetStream store directory. Empty disables JetStream.
	StoreDir string
	// GatewayAdvertise, when set, is the host:port this server tells other
	// clusters to reach its gateway at (e.g. a WAN emulator in front of
	// it); default the bound gateway address.
	GatewayAdvertise string
	// Tags are server tags usable in stream placement.
	Tags []string
	// Standalone runs a lone server: no cluster routes, no gateways, and
	// JetStream unclustered (clustered JetStream cannot elect a meta leader
	// with one server routed only to itself). Streams placed in Cluster
	// still work.
	Standalone bool
	// Auth, when set, puts the server in operator mode: every client,
	// route and gateway must authenticate (internal/natsauth).
	Auth *natsauth.ServerAuth
	// TLS, when set, requires TLS of clients, routes and gateways.
	TLS *TLS
	// ConnectCreds is the credential Connect uses (tests, readiness
	// checks); empty connects without one.
	ConnectCreds natscreds.Creds
}

// Server is a running embedded NATS server.
type Server struct {
	ns  *server.Server
	cfg Config
	log *slogAdapter
}

// FreePort returns a TCP port that was free a moment ago on host.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Config) setDefaults() error {
	if c.Cluster == "" {
		return errors.New("natsembed: cluster name required")
	}
	if c.Name == "" {
		c.Name = c.Cluster
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	for _, p := range []*int{&c.Port, &c.ClusterPort, &c.GatewayPort} {
		if *p == 0 {
			port, err := FreePort(c.Host)
			if err != nil {
				return err
			}
			*p = port
		}
	}
	return nil
}

// Start starts the server and waits until it accepts client connections.
func Start(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	self, err := url.Parse(fmt.Sprintf("nats://%s", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.ClusterPort))))
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		NoSigs:     true,
		NoLog:      true,
		Tags:       cfg.Tags,
		Cluster: server.ClusterOpts{
			Name: cfg.Cluster,
			Host: cfg.Host,
			Port: cfg.ClusterPort,
		},
		// Clustered JetStream refuses a cluster without routes; a route to
		// ourselves is enough (FACTS.md).
		Routes: []*url.URL{self},
		Gateway: server.GatewayOpts{
			Name: cfg.Cluster,
			Host: cfg.Host,
			Port: cfg.GatewayPort,

			Advertise: cfg.GatewayAdvertise,
		},
	}
	for name, raw := range cfg.Gateways {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("natsembed: gateway %s: %w", name, err)
		}
		opts.Gateway.Gateways = append(opts.Gateway.Gateways, &server.RemoteGatewayOpts{Name: name, URLs: []*url.URL{u}})
	}
	if cfg.Standalone {
		opts.Routes = nil
		opts.Cluster = server.ClusterOpts{Name: cfg.Cluster}
		opts.Gateway = server.GatewayOpts{}
	}
	if err := applyAuth(opts, cfg.Auth, cfg.TLS); err != nil {
		return nil, err
	}
	if cfg.StoreDir != "" {
		opts.JetStream = true
		opts.StoreDir = cfg.StoreDir
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: new server %s: %w", cfg.Name, err)
	}
	// Until the caller says the server has settled (Settled), its warnings
	// are start-up chatter ("Waiting for routing to be established", "has
	// not established contact with a meta leader") and go to debug.
	adapter := &slogAdapter{log: log.With("nats", cfg.Name)}
	adapter.quiet.Store(true)
	ns.SetLoggerV2(adapter, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("natsembed: server %s not ready for connections", cfg.Name)
	}
	s := &Server{ns: ns, cfg: cfg, log: adapter}
	if cfg.Standalone || cfg.StoreDir == "" {
		// No routes, gateways or meta group to wait for.
		s.Settled()
	}
	return s, nil
}

// Settled ends the start-up period: from now on the server's warnings and
// errors are logged at their own level. StartSuperCluster calls it once
// routes, gateways and the JetStream meta group are up.
func (s *Server) Settled() { s.log.quiet.Store(false) }

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// CA is the pool a client must trust when TLS is on, else nil.
func (s *Server) CA() *x509.CertPool {
	if s.cfg.TLS == nil {
		return nil
	}
	return s.cfg.TLS.CA
}

// GatewayURL is the URL other clusters use to join this one.
func (s *Server) GatewayURL() string {
	return fmt.Sprintf("nats://%s", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.GatewayPort)))
}

// Cluster returns the cluster name.
func (s *Server) Cluster() string { return s.cfg.Cluster }

// NumGateways is the number of remote clusters this server has an outbound
// gateway connection to.
func (s *Server) NumGateways() int { return s.ns.NumOutboundGateways() }

// Shutdown stops the server and waits for it; safe to call twice. What the
// server says while it stops (a final meta snapshot, gateways to peers that
// stopped first) is logged at debug level.
func (s *Server) Shutdown() {
	s.log.quiet.Store(true)
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Connect opens a client connection to this server with the server's
// ConnectCreds (an admin credential in tests and the dev stack).
func (s *Server) Connect(name string) (*nats.Conn, error) {
	return s.ConnectAs(name, s.cfg.ConnectCreds)
}

// ConnectAs opens a client connection with creds (and the server's CA
// when TLS is on).
func (s *Server) ConnectAs(name string, creds natscreds.Creds) (*nats.Conn, error) {
	opts := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, natscreds.Options(creds, s.CA())...)
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connect %s: %w", s.cfg.Name, err)
	}
	return nc, nil
}

// WaitJetStream blocks until the JetStream API answers through nc (the meta
// group has a leader), or ctx ends.
func WaitJetStream(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for jetstream: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitGateways blocks until s has outbound gateways to n remote clusters.
func (s *Server) WaitGateways(ctx context.Context, n int) error {
	for s.NumGateways() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d gateways on %s (have %d): %w", n, s.cfg.Name, s.NumGateways(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// slogAdapter is the server's logger. While quiet (starting or stopping),
// warnings and errors are logged at debug level: a supercluster coming up
// or going down on one machine always says them, and they mean nothing.
type slogAdapter struct {
	log   *slog.Logger
	quiet atomic.Bool
}

func (a *slogAdapter) logf(lvl slog.Level, format string, v []any) {
	if a.quiet.Load() {
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if lvl < slog.LevelWarn && !a.log.Enabled(ctx, lvl) {
		return
	}
	msg := fmt.Sprintf(format, v...)
	if lvl >= slog.LevelWarn && sourceNotYetThere(msg) {
		lvl = slog.LevelDebug
	}
	a.log.Log(ctx, lvl, msg)
}

// sourceNotYetThere reports the warning of a stream whose source stream
// does not exist yet. The server retries until it does; its own comment
// (nats-server stream.go, setupSourceConsumer) calls this normal while
// streams come up in no particular order: the global layer's sourcing
// streams start before the cells' streams do.
func sourceNotYetThere(msg string) bool {
	return strings.Contains(msg, "create source consumer") && strings.Contains(msg, "stream not found")
}

func (a *slogAdapter) Noticef(format string, v ...any) { a.logf(slog.LevelDebug, format, v) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.logf(slog.LevelWarn, format, v) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.logf(slog.LevelError, format, v) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.logf(slog.LevelError, format, v) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.logf(slog.LevelDebug, format, v) }
func (a *slogAdapter) Tracef(format string, v ...any)  {}
