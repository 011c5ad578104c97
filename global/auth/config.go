package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// OIDCIssuer is one identity provider whose ID tokens log players in.
type OIDCIssuer struct {
	// Issuer is the iss the provider puts in its tokens and the base URL of
	// its discovery document (Issuer + "/.well-known/openid-configuration").
	Issuer string
	// ClientID must appear in the token's aud.
	ClientID string
	// Algs are the accepted signing algorithms. Empty: what the provider's
	// discovery document advertises, restricted to the asymmetric algorithms
	// go-oidc supports (never "none" nor HS*).
	Algs []string
}

// Config of the auth service. Zero values select the documented defaults
// (see withDefaults).
type Config struct {
	// Issuer is the iss of every access token (usually the global layer's
	// public URL). Required.
	Issuer string
	// OIDCIssuers are the identity providers accepted by POST /auth/login.
	// Empty: only device login (when allowed) works.
	OIDCIssuers []OIDCIssuer
	// AllowDeviceLogin enables guest login by device id. Off by default:
	// anyone who knows a device id can log in as it.
	AllowDeviceLogin bool
	// EncryptionKey (32 bytes) seals emails and signing keys at rest.
	// Required; every global instance must share it.
	EncryptionKey []byte

	// AccessTTL is the access-token lifetime. Default 15 min.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of a refresh-token family (from login, not
	// sliding). Default 30 days.
	RefreshTTL time.Duration
	// KeyLifetime: a signing key older than this is replaced automatically.
	// Default 7 days.
	KeyLifetime time.Duration
	// KeyRefresh is how often an instance reloads the key table (to see
	// keys other instances created). Default 1 min.
	KeyRefresh time.Duration
	// KeyPublishAhead is how long a new key sits in the JWKS before anyone
	// signs with it, so every instance publishes it first. Default
	// 2×KeyRefresh. The very first key is active at once.
	KeyPublishAhead time.Duration
	// MaxBody limits request bodies. Default 16 KiB.
	MaxBody int64
	// RateLimits bound login and refresh per source address and per
	// identity (see RateLimits for the defaults).
	RateLimits RateLimits
}

// Defaults.
const (
	DefaultAccessTTL   = 15 * time.Minute
	DefaultRefreshTTL  = 30 * 24 * time.Hour
	DefaultKeyLifetime = 7 * 24 * time.Hour
	DefaultKeyRefresh  = time.Minute
	DefaultMaxBody     = 16 << 10
)

// withDefaults fills every zero value; all defaults live here.
func (c Config) withDefaults() Config {
	if c.AccessTTL <= 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.KeyLifetime <= 0 {
		c.KeyLifetime = DefaultKeyLifetime
	}
	if c.KeyRefresh <= 0 {
		c.KeyRefresh = DefaultKeyRefresh
	}
	if c.KeyPublishAhead <= 0 {
		c.KeyPublishAhead = 2 * c.KeyRefresh
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	c.RateLimits = c.RateLimits.withDefaults()
	return c
}

func (c Config) validate() error {
	if c.Issuer == "" {
		return errors.New("auth: Config.Issuer is required")
	}
	seen := map[string]bool{}
	for i, is := range c.OIDCIssuers {
		if is.Issuer == "" || is.ClientID == "" {
			return fmt.Errorf("auth: OIDCIssuers[%d]: issuer and client id are required", i)
		}
		if is.Issuer == deviceIssuer {
			return fmt.Errorf("auth: OIDCIssuers[%d]: issuer %q is reserved", i, deviceIssuer)
		}
		if seen[is.Issuer] {
			return fmt.Errorf("auth: OIDCIssuers[%d]: issuer %s listed twice", i, is.Issuer)
		}
		seen[is.Issuer] = true
		for _, a := range is.Algs {
			if a == "none" || len(a) >= 2 && a[:2] == "HS" {
				return fmt.Errorf("auth: OIDCIssuers[%d]: algorithm %s refused", i, a)
			}
		}
	}
	return nil
}

// Deps are the services auth uses.
type Deps struct {
	// DB is the database of record. Required.
	DB *pgxpool.Pool
	// Log: nil means slog.Default().
	Log *slog.Logger
	// Metrics receives the auth metrics; nil registers nothing.
	Metrics prometheus.Registerer
	// OnNewPlayer, when set, runs inside the transaction that creates a
	// player (after the player and identity rows exist). It may run more
	// than once if the transaction is retried: keep all its effects in tx.
	// An error aborts the login.
	OnNewPlayer func(ctx context.Context, tx pgx.Tx, playerID uuid.UUID) error
	// OnRevoke, when set, is called after a refresh family was revoked
	// (logout, reuse), so its access tokens can be withdrawn before they
	// expire (the global layer pushes it to every cell).
	OnRevoke func(family, playerID uuid.UUID, reason string)
	// OnLogin, when set, runs inside every login's transaction with the
	// verified ID token's claims (nil for a device login), e.g. to record
	// the roles an identity provider grants (global/ops). Same retry
	// rules as OnNewPlayer.
	OnLogin func(ctx context.Context, tx pgx.Tx, playerID uuid.UUID, issuer string, claims json.RawMessage) error
	// HTTPClient fetches OIDC discovery documents and keys. nil: a client
	// with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock (tests move it). nil: time.Now.
	Now func() time.Time
}
