package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// Consul service names cellgrid registers under.
const (
	ServiceGlobal = "cellgrid-global"
	ServiceCell   = "cellgrid-cell"
	ServiceRelay  = "cellgrid-relay"
)

// Service meta keys of cell and relay services.
const (
	MetaCell   = "cell"
	MetaRegion = "region"
	MetaAPI    = "api"   // the cell API's base URL
	MetaRelay  = "relay" // the relay's public UDP host:port
)

// Service is one Consul service registration with an HTTP health check.
type Service struct {
	ID, Name string
	Address  string // host
	Port     int
	Tags     []string
	Meta     map[string]string
	// CheckURL is polled by the Consul agent: 2xx passing, anything else
	// (or no answer) critical.
	CheckURL string
}

// CellServices are the registrations of one cell process: its API and its
// relay (whose UDP address and region are in the meta), both checked on
// the cell's /readyz.
func CellServices(id, region, apiURL, relayAddr string) ([]Service, error) {
	host, port, err := hostPort(apiURL)
	if err != nil {
		return nil, fmt.Errorf("cell services: api %q: %w", apiURL, err)
	}
	rhost, rport, err := net.SplitHostPort(relayAddr)
	if err != nil {
		return nil, fmt.Errorf("cell services: relay %q: %w", relayAddr, err)
	}
	rp, err := strconv.Atoi(rport)
	if err != nil {
		return nil, fmt.Errorf("cell services: relay port %q: %w", rport, err)
	}
	meta := map[string]string{MetaCell: id, MetaRegion: region, MetaAPI: apiURL, MetaRelay: relayAddr}
	check := apiURL + "/readyz"
	return []Service{
		{ID: ServiceCell + "-" + id, Name: ServiceCell, Address: host, Port: port, Tags: []string{"cell-" + id, "region-" + region}, Meta: meta, CheckURL: check},
		{ID: ServiceRelay + "-" + id, Name: ServiceRelay, Address: rhost, Port: rp, Tags: []string{"udp", "cell-" + id, "region-" + region}, Meta: meta, CheckURL: check},
	}, nil
}

// GlobalService is the registration of a global layer process at apiURL.
func GlobalService(instance, apiURL string) (Service, error) {
	host, port, err := hostPort(apiURL)
	if err != nil {
		return Service{}, fmt.Errorf("global service: %q: %w", apiURL, err)
	}
	return Service{ID: ServiceGlobal + "-" + instance, Name: ServiceGlobal, Address: host, Port: port,
		Meta: map[string]string{MetaAPI: apiURL}, CheckURL: apiURL + "/readyz"}, nil
}

func hostPort(u string) (string, int, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(pu.Port())
	if err != nil {
		return "", 0, fmt.Errorf("no port in %q", u)
	}
	return pu.Hostname(), p, nil
}

// RegistrarConfig configures a Registrar. Zero durations take the defaults
// of DefaultRegistrarConfig.
type RegistrarConfig struct {
	Services []Service
	// CheckInterval and CheckTimeout of the HTTP checks: a killed process
	// turns critical within about one interval.
	CheckInterval, CheckTimeout time.Duration
	// DeregisterAfter removes a service critical for that long (a process
	// that died without deregistering). Consul's minimum is 1m.
	DeregisterAfter time.Duration
	// Refresh is how often the registrations are re-asserted (an agent
	// restarted in dev mode forgets them).
	Refresh time.Duration
}

// DefaultRegistrarConfig returns every default in one place.
func DefaultRegistrarConfig() RegistrarConfig {
	return RegistrarConfig{CheckInterval: 2 * time.Second, CheckTimeout: time.Second, DeregisterAfter: 10 * time.Minute, Refresh: 30 * time.Second}
}

// Registrar registers a process's services with the local Consul agent
// while it runs and deregisters them on a clean shutdown.
type Registrar struct {
	cfg    RegistrarConfig
	client *consul.Client
	log    *slog.Logger
	once   sync.Once
}

// NewRegistrar checks cfg. client talks to the Consul agent of this node.
func NewRegistrar(cfg RegistrarConfig, client *consul.Client, log *slog.Logger) (*Registrar, error) {
	if client == nil {
		return nil, errors.New("consul registrar: nil client")
	}
	if len(cfg.Services) == 0 {
		return nil, errors.New("consul registrar: no service")
	}
	d := DefaultRegistrarConfig()
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = d.CheckInterval
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = d.CheckTimeout
	}
	if cfg.DeregisterAfter < time.Minute {
		cfg.DeregisterAfter = d.DeregisterAfter
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = d.Refresh
	}
	for _, s := range cfg.Services {
		if s.ID == "" || s.Name == "" || s.CheckURL == "" {
			return nil, fmt.Errorf("consul registrar: service %+v: id, name and check URL are required", s)
		}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Registrar{cfg: cfg, client: client, log: log}, nil
}

// Register registers every service now (idempotent).
func (r *Registrar) Register(ctx context.Context) error {
	for _, s := range r.cfg.Services {
		reg := &consul.AgentServiceRegistration{
			ID: s.ID, Name: s.Name, Address: s.Address, Port: s.Port, Tags: s.Tags, Meta: s.Meta,
			Check: &consul.AgentServiceCheck{
				CheckID:                        s.ID + "-readyz",
				Name:                           s.Name + " /readyz",
				HTTP:                           s.CheckURL,
				Interval:                       r.cfg.CheckInterval.String(),
				Timeout:                        r.cfg.CheckTimeout.String(),
				DeregisterCriticalServiceAfter: r.cfg.DeregisterAfter.String(),
			},
		}
		opts := consul.ServiceRegisterOpts{}.WithContext(ctx)
		if err := r.client.Agent().ServiceRegisterOpts(reg, opts); err != nil {
			return fmt.Errorf("consul register %s: %w", s.ID, err)
		}
	}
	return nil
}

// Deregister removes every service (idempotent).
func (r *Registrar) Deregister(ctx context.Context) error {
	var errs error
	for _, s := range r.cfg.Services {
		q := (&consul.QueryOptions{}).WithContext(ctx)
		if err := r.client.Agent().ServiceDeregisterOpts(s.ID, q); err != nil {
			errs = errors.Join(errs, fmt.Errorf("consul deregister %s: %w", s.ID, err))
		}
	}
	return errs
}

// Run registers the services, re-asserts them every Refresh (retrying a
// failed registration every CheckInterval), and deregisters them when ctx
// ends (a clean shutdown). Consul being away is logged, never fatal: it
// must not stop a cell.
func (r *Registrar) Run(ctx context.Context) error {
	registered := false
	for {
		if err := r.Register(ctx); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("consul register", "err", err)
			}
			registered = false
		} else {
			registered = true
		}
		wait := r.cfg.Refresh
		if !registered {
			wait = r.cfg.CheckInterval
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.Deregister(dctx); err != nil {
				// Not a failure of the run: Consul removes a service left
				// critical after DeregisterAfter.
				r.log.Warn("consul deregister on shutdown", "err", err)
			}
			return nil
		case <-time.After(wait):
		}
	}
}
