package auth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestLoginAndRefreshRateLimits: login and refresh are limited per source
// address and per identity (429 rate_limited with Retry-After), and nobody
// can spend another identity's allowance with requests that fail.
func TestLoginAndRefreshRateLimits(t *testing.T) {
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	clk := &fakeClock{t: time.Now()}
	cfg := baseConfig(idp)
	cfg.AllowDeviceLogin = true
	cfg.RateLimits = auth.RateLimits{
		PerSource:      auth.RateLimit{Rate: 1, Burst: 5},
		PerIdentity:    auth.RateLimit{Rate: 0.1, Burst: 3},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
	}
	a, err := auth.New(cfg, auth.Deps{DB: db.Pool, Now: clk.Now, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux, a.Verifier().Middleware)
	doXFF := func(path, source, xff string, body any) (int, tokenResp, http.Header) {
		t.Helper()
		b, _ := json.Marshal(body)
		req := httptest.NewRequest("POST", path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		req.RemoteAddr = source
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		var tr tokenResp
		_ = json.Unmarshal(w.Body.Bytes(), &tr)
		return w.Code, tr, w.Header()
	}
	do := func(path, source string, body any) (int, tokenResp, http.Header) {
		t.Helper()
		return doXFF(path, source, "", body)
	}
	limited := func(what string, code int, tr tokenResp, h http.Header) {
		t.Helper()
		ra, err := strconv.Atoi(h.Get("Retry-After"))
		if code != http.StatusTooManyRequests || tr.Error.Code != "rate_limited" || err != nil || ra < 1 {
			t.Fatalf("%s: %d %+v Retry-After %q, want 429 rate_limited with Retry-After", what, code, tr.Error, h.Get("Retry-After"))
		}
	}
	device := func(id string) map[string]string { return map[string]string{"provider": "device", "device_id": id} }

	// Per source: 5 at once from one address, whatever they ask; the 6th waits.
	for i := range 5 {
		if code, _, _ := do("/auth/login", "10.0.0.1:4000", map[string]string{"provider": "nope"}); code != 400 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	code, tr, h := do("/auth/login", "10.0.0.1:4001", map[string]string{"provider": "nope"})
	limited("6th login from one address", code, tr, h)
	if code, _, _ := do("/auth/login", "10.0.0.2:4000", map[string]string{"provider": "nope"}); code != 400 {
		t.Fatalf("another address: %d", code)
	}
	// One IPv6 /64 is one source.
	for i := range 5 {
		do("/auth/login", "[2001:db8::"+strconv.Itoa(i+1)+"]:4000", map[string]string{"provider": "nope"})
	}
	code, tr, h = do("/auth/login", "[2001:db8::99]:4000", map[string]string{"provider": "nope"})
	limited("6th login from one /64", code, tr, h)
	// Behind a trusted proxy the client is the rightmost untrusted
	// X-Forwarded-For hop; from anyone else the header is ignored.
	nope := map[string]string{"provider": "nope"}
	for i := range 5 {
		if code, _, _ := doXFF("/auth/login", "192.0.2.10:1", "203.0.113.7, 198.51.100.1, 192.0.2.11", nope); code != 400 {
			t.Fatalf("via proxy %d: %d", i, code)
		}
	}
	code, tr, h = doXFF("/auth/login", "192.0.2.12:1", "198.51.100.1", nope)
	limited("6th login of one client via the proxies", code, tr, h)
	if code, _, _ := doXFF("/auth/login", "192.0.2.10:1", "198.51.100.2", nope); code != 400 {
		t.Fatalf("another client via the proxy: %d", code)
	}
	for i := range 5 {
		doXFF("/auth/login", "10.9.9.9:1", "198.51.100."+strconv.Itoa(100+i), nope) // spoofed, untrusted
	}
	code, tr, h = doXFF("/auth/login", "10.9.9.9:1", "198.51.100.200", nope)
	limited("X-Forwarded-For from an untrusted peer", code, tr, h)
	// Refresh has its own per-source allowance.
	if code, _, _ := do("/auth/refresh", "10.0.0.1:4002", map[string]string{"refresh_token": "cgrt_nope-0"}); code != 401 {
		t.Fatalf("refresh from a login-limited address: %d", code)
	}

	// Per identity: one device id from many addresses, 3 at once.
	for i := range 3 {
		if code, tr, _ := do("/auth/login", "10.1.0."+strconv.Itoa(i)+":1", device("device-aaaaaaaaaaaaaaaa")); code != 200 {
			t.Fatalf("device login %d: %d %+v", i, code, tr.Error)
		}
	}
	code, tr, h = do("/auth/login", "10.1.0.9:1", device("device-aaaaaaaaaaaaaaaa"))
	limited("4th login of one device", code, tr, h)
	if code, _, _ := do("/auth/login", "10.1.0.9:1", device("device-bbbbbbbbbbbbbbbb")); code != 200 {
		t.Fatalf("another device from the same address: %d", code)
	}
	clk.Add(10 * time.Second) // one more token for the identity
	if code, _, _ := do("/auth/login", "10.1.0.10:1", device("device-aaaaaaaaaaaaaaaa")); code != 200 {
		t.Fatalf("device login after the refill: %d", code)
	}

	// Refused ID tokens never spend the identity's allowance: after many
	// forgeries for erin, from many addresses, erin logs in.
	for i, f := range testoidc.Forgeries {
		for j := range 2 {
			src := "10.2." + strconv.Itoa(i) + "." + strconv.Itoa(j) + ":1"
			if code, _, _ := do("/auth/login", src, map[string]string{"provider": "oidc", "id_token": idp.ForgedIDToken(t, "erin", f)}); code == 200 || code == 429 {
				t.Fatalf("forgery %v: %d", f, code)
			}
		}
	}
	code, erin, _ := do("/auth/login", "10.2.99.1:1", map[string]string{"provider": "oidc", "id_token": idp.IDToken(t, "erin")})
	if code != 200 {
		t.Fatalf("erin after the forgeries: %d %+v", code, erin.Error)
	}
	// A verified identity is limited too.
	for i := range 2 {
		if code, _, _ := do("/auth/login", "10.2.99."+strconv.Itoa(i+2)+":1", map[string]string{"provider": "oidc", "id_token": idp.IDToken(t, "erin")}); code != 200 {
			t.Fatalf("erin login %d: %d", i, code)
		}
	}
	code, tr, h = do("/auth/login", "10.2.99.9:1", map[string]string{"provider": "oidc", "id_token": idp.IDToken(t, "erin")})
	limited("4th login of one OIDC identity", code, tr, h)

	// Per refresh token: one token hammered from many addresses.
	for i := range 3 {
		if code, _, _ := do("/auth/refresh", "10.3.0."+strconv.Itoa(i)+":1", map[string]string{"refresh_token": "cgrt_guessed"}); code != 401 {
			t.Fatalf("refresh %d: %d", i, code)
		}
	}
	code, tr, h = do("/auth/refresh", "10.3.0.9:1", map[string]string{"refresh_token": "cgrt_guessed"})
	limited("4th refresh of one token", code, tr, h)
	// Erin's own refresh token is unaffected.
	if code, tr, _ := do("/auth/refresh", "10.3.0.9:1", map[string]string{"refresh_token": erin.RefreshToken}); code != 200 || tr.AccessToken == "" {
		t.Fatalf("erin's refresh: %d %+v", code, tr.Error)
	}
}
