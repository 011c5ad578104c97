package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// deviceIssuer is the auth_identities.issuer of guest (device) logins.
const deviceIssuer = "device"

// Auth is the login service. It has no goroutines of its own and needs no
// Close.
type Auth struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	sealer  *Sealer
	keys    *keyring
	issuers map[string]*issuerVerifier // by Issuer; read-only after New
	limits  *limiters                  // nil when Config.RateLimits.Disabled
	m       metrics
}

type metrics struct {
	logins    *prometheus.CounterVec   // provider, result
	loginDur  *prometheus.HistogramVec // provider
	refreshes *prometheus.CounterVec   // result
	rotations prometheus.Counter
	// rateLimited counts 429s by limit (login per source, ...).
	rateLimited *prometheus.CounterVec
}

// New checks cfg, loads (or, on the very first start, creates) the signing
// keys and returns the service. It fails when the database is unreachable
// or the encryption key does not open the stored keys.
func New(cfg Config, deps Deps) (*Auth, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("auth: Deps.DB is required")
	}
	sealer, err := NewSealer(cfg.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("auth: encryption key: %w", err)
	}
	a := &Auth{cfg: cfg, deps: deps, sealer: sealer, log: deps.Log, now: deps.Now, issuers: map[string]*issuerVerifier{},
		limits: newLimiters(cfg.RateLimits)}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "auth")
	if a.now == nil {
		a.now = time.Now
	}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	for _, is := range cfg.OIDCIssuers {
		a.issuers[is.Issuer] = &issuerVerifier{cfg: is, client: client, now: a.now}
	}
	if err := a.initMetrics(deps.Metrics); err != nil {
		return nil, err
	}
	a.keys = &keyring{
		pool:         deps.DB,
		sealer:       sealer,
		now:          a.now,
		log:          a.log,
		accessTTL:    cfg.AccessTTL,
		lifetime:     cfg.KeyLifetime,
		refresh:      cfg.KeyRefresh,
		publishAhead: cfg.KeyPublishAhead,
		onRotate:     a.m.rotations.Inc,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.keys.reload(ctx, 0); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return a, nil
}

// Issuer is the iss of the access tokens this service signs.
func (a *Auth) Issuer() string { return a.cfg.Issuer }

// Verifier verifies this service's access tokens straight from the key
// table (no HTTP). Cells use accesstoken.NewRemoteVerifier(ctx, Issuer(),
// globalURL+"/.well-known/jwks.json") instead.
func (a *Auth) Verifier() *accesstoken.Verifier {
	return accesstoken.NewVerifier(a.cfg.Issuer, a.keys, a.now)
}

// Rotate creates a new signing key now. It becomes the signing key after
// Config.KeyPublishAhead; the replaced key stays in the JWKS until the
// tokens it signed have expired. Other instances pick it up within
// Config.KeyRefresh.
func (a *Auth) Rotate(ctx context.Context) error {
	return a.keys.rotateNow(ctx)
}

// JWKS returns the public keys currently published.
func (a *Auth) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	return a.keys.JWKS(ctx)
}

// Register adds the auth routes to mux. requireAuth guards /auth/logout.
func (a *Auth) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("POST /auth/login", a.handle(a.handleLogin))
	mux.Handle("POST /auth/refresh", a.handle(a.handleRefresh))
	mux.Handle("POST /auth/logout", requireAuth(a.handle(a.handleLogout)))
	mux.Handle("GET /.well-known/jwks.json", a.handle(a.handleJWKS))
}

func (a *Auth) initMetrics(reg prometheus.Registerer) error {
	var err error
	if a.m.logins, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cellgrid", Subsystem: "auth", Name: "logins_total",
		Help: "Login attempts by provider and result (ok, new_player, refused, error).",
	}, []string{"provider", "result"})); err != nil {
		return err
	}
	if a.m.loginDur, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "cellgrid", Subsystem: "auth", Name: "login_duration_seconds",
		Help:    "Time to verify, upsert and sign one successful login.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"provider"})); err != nil {
		return err
	}
	if a.m.refreshes, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cellgrid", Subsystem: "auth", Name: "refreshes_total",
		Help: "Refresh attempts by result (ok, invalid, reused, error).",
	}, []string{"result"})); err != nil {
		return err
	}
	if a.m.rateLimited, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cellgrid", Subsystem: "auth", Name: "rate_limited_total",
		Help: "Login and refresh requests refused with 429, by limit.",
	}, []string{"limit"})); err != nil {
		return err
	}
	if a.m.rotations, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "cellgrid", Subsystem: "auth", Name: "signing_key_rotations_total",
		Help: "Signing keys created by this instance (first key and rotations).",
	})); err != nil {
		return err
	}
	return nil
}

// register registers c, or returns the collector already registered under
// the same name (a second instance on one registry, as in tests).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("auth: register metric: %w", err)
	}
	return c, nil
}
