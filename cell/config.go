package cell

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/cell/telemetry"
	"github.com/cellgrid/cellgrid/relay"
)

// Config is a cell's configuration. DefaultConfig sets every default; a
// zero field of a Config passed to New takes the default.
type Config struct {
	// ID is the cell id ("eu-west-1"): NATS cluster, subjects, Redis keys.
	ID string
	// Region is recorded on sessions and returned to clients. Default ID.
	Region string
	// HTTPAddr is the cell API's listen address; port 0 picks a free one
	// (read it back with URL). Default 127.0.0.1:0.
	HTTPAddr string
	// OpsAddr is the ops listener's address: /metrics and /readyz with
	// each check's error text (the public /readyz names failing checks
	// only). Keep it on loopback or a private network; port 0 picks a
	// free one (read it back with OpsURL). Default 127.0.0.1:0.
	OpsAddr string
	// RelayAddr is the relay's UDP listen address; port 0 picks a free one
	// (read it back with RelayAddr). Default 127.0.0.1:0.
	RelayAddr string
	// RelayPublicAddr is the relay address handed to clients when it
	// differs from the bound one (NAT, 0.0.0.0). Default: the bound address.
	RelayPublicAddr string
	// Relay tunes the relay (zero fields take relay.DefaultConfig).
	Relay relay.Config

	// GameModes are the matchmaking pools. Default matchmaker.DefaultModes.
	GameModes []matchmaker.GameMode
	// Matchmaker tunes ticks, leases and workers.
	Matchmaker matchmaker.Config
	// Janitor requeues tickets a dead matchmaker left matched. A zero
	// Deadline is three times the matchmaker's HandlerTimeout (at least
	// 30s).
	Janitor matchmaker.JanitorConfig

	// Fleet sizes and timings (Cell, NATSURL and Version are filled in from
	// ID, NATSURL and DGS).
	Fleet fleet.Config
	// DGS is the game server version the fleet runs: command and arguments
	// (the launcher appends --cell --id --nats --addr --version).
	DGS fleet.Version
	// NATSURL is the NATS URL handed to launched servers. Default: the URL
	// Deps.NATS is connected to.
	NATSURL string

	// ConnectKeySeed is the 32-byte Ed25519 seed connect tokens are signed
	// with (base64 in config files; cmd decodes it). Empty: a random key per
	// process, fine for one-process dev only.
	ConnectKeySeed []byte
	// ConnectTokenTTL is a connect token's lifetime. Default 30s.
	ConnectTokenTTL time.Duration

	// GlobalIssuer and JWKSURL build the access-token verifier when
	// Deps.Verifier is nil.
	GlobalIssuer string
	JWKSURL      string

	// RatingCacheTTL is how long a player's elo_rating stays cached in
	// Redis. Default 5m.
	RatingCacheTTL time.Duration
	// SessionLiveTTL bounds a session's live state without a result.
	// Default 2h.
	SessionLiveTTL time.Duration
	// SessionRestoreInterval is how often the cell checks whether Redis
	// lost the live sessions (restart) and rebuilds them from the
	// database. Default 2s.
	SessionRestoreInterval time.Duration
	// RetryAfter is what a shed join is told. Default 5s.
	RetryAfter time.Duration
	// PublicURL is the cell API's URL in heartbeats; default the listen URL.
	PublicURL string
	// HeartbeatInterval is how often the cell announces itself to the
	// topology (default 1 s).
	HeartbeatInterval time.Duration
	// OverflowAfter is how long a match's oldest ticket must have waited
	// before a match this cell cannot give a server goes to the next cell
	// within every player's latency limit (overflow.go). Negative turns
	// overflow off; 1ns means at once. Default 5s.
	OverflowAfter time.Duration
	// Telemetry configures POST /game/telemetry; its Cell is set to ID.
	Telemetry TelemetryConfig
	// UnreadyLinger is how long the API keeps answering after a component
	// died, with /readyz 503 naming it, before Run returns the failure
	// (health checkers see it before the listener closes). Default 2s.
	UnreadyLinger time.Duration
}

// DefaultConfig returns every default in one place.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:          "127.0.0.1:0",
		OpsAddr:           "127.0.0.1:0",
		RelayAddr:         "127.0.0.1:0",
		Relay:             relay.DefaultConfig(),
		GameModes:         matchmaker.DefaultModes(),
		Matchmaker:        matchmaker.DefaultConfig(),
		Fleet:             fleet.DefaultConfig(),
		ConnectTokenTTL:   30 * time.Second,
		RatingCacheTTL:    5 * time.Minute,
		SessionLiveTTL:    2 * time.Hour,
		RetryAfter:        5 * time.Second,
		HeartbeatInterval: time.Second,
		OverflowAfter:     5 * time.Second,
		UnreadyLinger:     2 * time.Second,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.ID == "" {
		return c, errors.New("cell config: ID required")
	}
	if c.Region == "" {
		c.Region = c.ID
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = d.HTTPAddr
	}
	if c.OpsAddr == "" {
		c.OpsAddr = d.OpsAddr
	}
	if c.RelayAddr == "" {
		c.RelayAddr = d.RelayAddr
	}
	if len(c.GameModes) == 0 {
		c.GameModes = d.GameModes
	}
	if c.ConnectTokenTTL <= 0 {
		c.ConnectTokenTTL = d.ConnectTokenTTL
	}
	if c.RatingCacheTTL <= 0 {
		c.RatingCacheTTL = d.RatingCacheTTL
	}
	if c.SessionLiveTTL <= 0 {
		c.SessionLiveTTL = d.SessionLiveTTL
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = d.RetryAfter
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.OverflowAfter == 0 {
		c.OverflowAfter = d.OverflowAfter
	}
	if c.UnreadyLinger <= 0 {
		c.UnreadyLinger = d.UnreadyLinger
	}
	if len(c.ConnectKeySeed) != 0 && len(c.ConnectKeySeed) != ed25519.SeedSize {
		return c, fmt.Errorf("cell config: connect key seed has %d bytes, want %d", len(c.ConnectKeySeed), ed25519.SeedSize)
	}
	// Fleet and matchmaker fill their own zero fields.
	return c, nil
}

// TelemetryConfig configures the cell's telemetry intake.
type TelemetryConfig = telemetry.Config

func withCell(c TelemetryConfig, id string) TelemetryConfig {
	c.Cell = id
	return c
}
