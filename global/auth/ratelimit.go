package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// RateLimit is a token bucket: Rate requests per second on average, Burst
// at once.
type RateLimit struct {
	Rate  float64
	Burst int
}

// RateLimits bound POST /auth/login and POST /auth/refresh, per global
// instance (in memory). Over a limit the answer is 429 rate_limited with
// Retry-After; nothing else is done for that request.
//
// No third party can spend someone else's allowance: the per-identity
// limits are keyed by what only the identity's holder can present — a
// device id (the device login's credential), an OIDC issuer and subject
// once the ID token verified, a refresh token — and the per-source limit by
// the client's address (IPv4 /32, IPv6 /64): the connection's, or, when
// the connection comes from one of TrustedProxies, the rightmost address
// in X-Forwarded-For that is not a trusted proxy.
type RateLimits struct {
	// PerSource: each route per client address. Default 5/s, burst 60.
	PerSource RateLimit
	// PerIdentity: logins per identity and refreshes per refresh token.
	// Default 0.2/s (one every 5 s), burst 10.
	PerIdentity RateLimit
	// MaxTracked bounds each limiter table (100000 keys); past it the table
	// is reset: a burst allowance for everyone, never a lockout.
	MaxTracked int
	// TrustedProxies are the load balancers in front of the global layer;
	// X-Forwarded-For is believed only from them. Empty: the connection's
	// address is the source (behind a load balancer, list it here, or every
	// client shares the balancer's allowance).
	TrustedProxies []netip.Prefix
	// Disabled turns the limits off (benchmarks of the login path itself).
	Disabled bool
}

func (l RateLimits) withDefaults() RateLimits {
	if l.PerSource.Rate <= 0 {
		l.PerSource.Rate = 5
	}
	if l.PerSource.Burst <= 0 {
		l.PerSource.Burst = 60
	}
	if l.PerIdentity.Rate <= 0 {
		l.PerIdentity.Rate = 0.2
	}
	if l.PerIdentity.Burst <= 0 {
		l.PerIdentity.Burst = 10
	}
	if l.MaxTracked <= 0 {
		l.MaxTracked = 100000
	}
	return l
}

// limiterTable is one set of token buckets by key.
type limiterTable struct {
	lim RateLimit
	max int

	mu sync.Mutex
	// mu guards m.
	m map[string]*rate.Limiter
}

func newLimiterTable(lim RateLimit, max int) *limiterTable {
	return &limiterTable{lim: lim, max: max, m: map[string]*rate.Limiter{}}
}

// allow takes one token for key at now, or says how long until one is due.
func (t *limiterTable) allow(key string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	l, ok := t.m[key]
	if !ok {
		if len(t.m) >= t.max {
			t.m = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Limit(t.lim.Rate), t.lim.Burst)
		t.m[key] = l
	}
	t.mu.Unlock()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limiters are the auth service's tables; nil when disabled.
type limiters struct {
	loginSource, refreshSource, loginIdentity, refreshIdentity *limiterTable
	trusted                                                    []netip.Prefix
}

func newLimiters(c RateLimits) *limiters {
	if c.Disabled {
		return nil
	}
	return &limiters{
		loginSource:     newLimiterTable(c.PerSource, c.MaxTracked),
		refreshSource:   newLimiterTable(c.PerSource, c.MaxTracked),
		loginIdentity:   newLimiterTable(c.PerIdentity, c.MaxTracked),
		refreshIdentity: newLimiterTable(c.PerIdentity, c.MaxTracked),
		trusted:         c.TrustedProxies,
	}
}

// check takes a token from t for key; over the limit it returns the 429.
func (a *Auth) check(t *limiterTable, what, key string) error {
	if a.limits == nil {
		return nil
	}
	ok, retry := t.allow(key, a.now())
	if ok {
		return nil
	}
	a.m.rateLimited.WithLabelValues(what).Inc()
	return &httpapi.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: "too many requests: " + what, RetryAfter: max(retry, time.Second)}
}

// sourceKey is the client's address as a rate-limit key: the IP for IPv4,
// its /64 for IPv6 (one subscriber's usual allocation). X-Forwarded-For is
// followed only through trusted proxies.
func (l *limiters) sourceKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if l.isTrusted(ip) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // malformed: stop at the last address we could read
			}
			ip = hop.Unmap()
			if !l.isTrusted(ip) {
				break
			}
		}
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func (l *limiters) isTrusted(ip netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
