package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/packet"
)

// Config tunes a Relay. A zero field takes its value from DefaultConfig;
// set a negative value where documented to disable a feature.
type Config struct {
	// TokenLeeway tolerates clock skew between the cell that mints tokens and
	// the relay: a token is accepted until ExpiresAt+TokenLeeway. Default 2s.
	TokenLeeway time.Duration
	// Now is the clock connect tokens are checked against. Nil means
	// time.Now; tests set it to expire tokens without waiting.
	Now func() time.Time
	// IdleTimeout closes a binding when neither direction carried a datagram
	// for this long. Default 30s.
	IdleTimeout time.Duration
	// PacketsPerSecond and PacketBurst limit datagrams a client sends (all
	// kinds, from its bound address). Defaults 500/s, burst 200.
	PacketsPerSecond float64
	PacketBurst      int
	// BytesPerSecond and ByteBurst limit client bytes. Defaults 256 KiB/s,
	// burst 64 KiB. ByteBurst must be at least MaxDatagram.
	BytesPerSecond float64
	ByteBurst      int
	// MaxBindings caps bound clients; further HELLOs get packet.RejectOverloaded.
	// Default 10000.
	MaxBindings int
	// MaxDatagram is the largest datagram forwarded; longer ones are dropped.
	// Default 1500.
	MaxDatagram int
	// PingPerSource and PingGlobal are beacon PINGs answered per second per
	// source address (hashed into PingBuckets buckets, so colliding sources
	// share one) and in total. Bursts are 4× the rate. Defaults 20/s, 20000/s.
	PingPerSource float64
	PingGlobal    float64
	PingBuckets   int // default 4096
	// HandshakeWorkers verify HELLOs concurrently (Ed25519 and store round
	// trips stay off the read loop); HandshakeQueue bounds HELLOs waiting for
	// them. Defaults 2 and 256.
	HandshakeWorkers int
	HandshakeQueue   int
	// HelloPerAddr and HelloPerIP are HELLOs accepted per second from one
	// ip:port and from one IP (all ports: players behind one NAT share it),
	// checked in the read loop before any token work; bursts are 2× the
	// rate. HelloSources bounds the sources tracked by each limiter (the
	// least useful are forgotten first). Over the limit a HELLO is dropped
	// unanswered (relay_dropped_total{reason="hello_limited"}). Defaults
	// 5/s, 50/s, 65536; a negative rate disables that limit.
	HelloPerAddr float64
	HelloPerIP   float64
	HelloSources int
	// ChallengeTTL is how long a CHALLENGE cookie may be echoed. Moving a
	// binding to a new address needs the cookie echoed from that address
	// (return routability). Default 10s.
	ChallengeTTL time.Duration
	// HandshakeTimeout bounds SessionChecker and ReplayGuard calls. Default 2s.
	HandshakeTimeout time.Duration
	// ReadBatch is how many datagrams one read takes from the public socket
	// with recvmmsg when it is an IPv4 *net.UDPConn. 1 disables batching.
	// Default 32.
	ReadBatch int
	// AllowedUpstreams, when not empty, restricts the DGS addresses tokens
	// may point at (defence in depth should a signing key leak).
	AllowedUpstreams []netip.Prefix
}

// DefaultConfig returns every default in one place.
func DefaultConfig() Config {
	return Config{
		TokenLeeway:      2 * time.Second,
		IdleTimeout:      30 * time.Second,
		PacketsPerSecond: 500,
		PacketBurst:      200,
		BytesPerSecond:   256 << 10,
		ByteBurst:        64 << 10,
		MaxBindings:      10000,
		MaxDatagram:      1500,
		PingPerSource:    20,
		PingGlobal:       20000,
		PingBuckets:      4096,
		HandshakeWorkers: 2,
		HandshakeQueue:   256,
		HandshakeTimeout: 2 * time.Second,
		ReadBatch:        32,
		HelloPerAddr:     5,
		HelloPerIP:       50,
		HelloSources:     65536,
		ChallengeTTL:     10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig and checks the result.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.TokenLeeway == 0 {
		c.TokenLeeway = d.TokenLeeway
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.PacketsPerSecond == 0 {
		c.PacketsPerSecond = d.PacketsPerSecond
	}
	if c.PacketBurst == 0 {
		c.PacketBurst = d.PacketBurst
	}
	if c.BytesPerSecond == 0 {
		c.BytesPerSecond = d.BytesPerSecond
	}
	if c.ByteBurst == 0 {
		c.ByteBurst = d.ByteBurst
	}
	if c.MaxBindings == 0 {
		c.MaxBindings = d.MaxBindings
	}
	if c.MaxDatagram == 0 {
		c.MaxDatagram = d.MaxDatagram
	}
	if c.PingPerSource == 0 {
		c.PingPerSource = d.PingPerSource
	}
	if c.PingGlobal == 0 {
		c.PingGlobal = d.PingGlobal
	}
	if c.PingBuckets == 0 {
		c.PingBuckets = d.PingBuckets
	}
	if c.HandshakeWorkers == 0 {
		c.HandshakeWorkers = d.HandshakeWorkers
	}
	if c.HandshakeQueue == 0 {
		c.HandshakeQueue = d.HandshakeQueue
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.ReadBatch == 0 {
		c.ReadBatch = d.ReadBatch
	}
	if c.HelloPerAddr == 0 {
		c.HelloPerAddr = d.HelloPerAddr
	}
	if c.HelloPerIP == 0 {
		c.HelloPerIP = d.HelloPerIP
	}
	if c.HelloSources == 0 {
		c.HelloSources = d.HelloSources
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = d.ChallengeTTL
	}
	switch {
	case c.TokenLeeway < 0, c.IdleTimeout < 0, c.HandshakeTimeout < 0, c.ChallengeTTL < 0:
		return c, errors.New("relay config: negative duration")
	case c.PacketsPerSecond < 0 || c.BytesPerSecond < 0 || c.PingPerSource < 0 || c.PingGlobal < 0:
		return c, errors.New("relay config: negative rate")
	case c.PacketBurst < 1 || c.MaxBindings < 1 || c.PingBuckets < 1 ||
		c.HandshakeWorkers < 1 || c.HandshakeQueue < 1 || c.ReadBatch < 1 || c.HelloSources < 1:
		return c, errors.New("relay config: count below 1")
	case c.MaxDatagram < packet.MaxLen || c.MaxDatagram > 65535:
		return c, fmt.Errorf("relay config: MaxDatagram %d outside [%d, 65535]", c.MaxDatagram, packet.MaxLen)
	case c.ByteBurst < c.MaxDatagram:
		return c, fmt.Errorf("relay config: ByteBurst %d below MaxDatagram %d", c.ByteBurst, c.MaxDatagram)
	}
	return c, nil
}

// SessionChecker says whether a game session still accepts players. The cell
// implements it on Redis; StaticSessions is the in-memory version.
type SessionChecker interface {
	SessionLive(ctx context.Context, sessionID uuid.UUID) (bool, error)
}

// ReplayGuard records connect-token nonces. FirstUse returns true exactly
// once per nonce within ttl, atomically across relays sharing the store. The
// cell implements it on Redis (SET NX PX); MemoryReplayGuard is the
// in-memory version.
type ReplayGuard interface {
	FirstUse(ctx context.Context, nonce [16]byte, ttl time.Duration) (bool, error)
}

// Deps are what a Relay needs from outside. All fields but Log and Metrics
// are required.
type Deps struct {
	// Conn is the public socket. The Relay owns it from New on and closes it
	// when it stops. Tests pass real loopback sockets; any net.PacketConn
	// works, a *net.UDPConn avoids allocations and enables batched reads.
	Conn     net.PacketConn
	Verifier *connecttoken.Verifier
	Sessions SessionChecker
	Replay   ReplayGuard
	// Log defaults to slog.Default().
	Log *slog.Logger
	// Metrics receives the relay's collectors; nil registers nowhere.
	Metrics prometheus.Registerer
}
