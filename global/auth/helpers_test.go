package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
	"github.com/prometheus/client_golang/prometheus"
)

const testIssuer = "https://global.cellgrid.test"

var testKey = bytes.Repeat([]byte{0x42}, 32)

// global is one running auth service behind an HTTP server, as the global
// layer wires it.
type global struct {
	Auth *auth.Auth
	Srv  *httptest.Server
	Reg  *prometheus.Registry
}

func baseConfig(idps ...*testoidc.OIDCProvider) auth.Config {
	cfg := auth.Config{Issuer: testIssuer, EncryptionKey: testKey}
	for _, p := range idps {
		cfg.OIDCIssuers = append(cfg.OIDCIssuers, auth.OIDCIssuer{Issuer: p.Issuer, ClientID: p.ClientID})
	}
	return cfg
}

func startGlobal(t testing.TB, cfg auth.Config, deps auth.Deps) *global {
	t.Helper()
	reg := prometheus.NewRegistry()
	if deps.Metrics == nil {
		deps.Metrics = reg
	}
	a, err := auth.New(cfg, deps)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	mux := http.NewServeMux()
	a.Register(mux, a.Verifier().Middleware)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &global{Auth: a, Srv: srv, Reg: reg}
}

func (g *global) JWKSURL() string { return g.Srv.URL + "/.well-known/jwks.json" }

// cell is a stand-in for a cell API: one route behind accesstoken.Middleware
// with a verifier that only knows global's JWKS URL.
func startCell(t testing.TB, v *accesstoken.Verifier) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /whoami", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := accesstoken.FromContext(r.Context())
		httpapi.WriteJSON(w, http.StatusOK, c)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type tokenResp struct {
	PlayerID     string `json:"player_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Error        struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call sends body (a string is sent as is, anything else as JSON) and
// decodes the answer into out (when not nil).
func call(t testing.TB, method, url, bearer string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d, bad JSON %q: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func (g *global) login(t testing.TB, body any) (int, tokenResp) {
	t.Helper()
	var tr tokenResp
	code := call(t, "POST", g.Srv.URL+"/auth/login", "", body, &tr)
	return code, tr
}

func (g *global) mustLoginOIDC(t testing.TB, idToken string) tokenResp {
	t.Helper()
	code, tr := g.login(t, map[string]string{"provider": "oidc", "id_token": idToken})
	if code != 200 || tr.AccessToken == "" || tr.RefreshToken == "" || tr.PlayerID == "" {
		t.Fatalf("login: %d %+v", code, tr)
	}
	return tr
}

func (g *global) refresh(t testing.TB, rt string) (int, tokenResp) {
	t.Helper()
	var tr tokenResp
	code := call(t, "POST", g.Srv.URL+"/auth/refresh", "", map[string]string{"refresh_token": rt}, &tr)
	return code, tr
}

func whoami(t testing.TB, cell *httptest.Server, access string) (int, accesstoken.Claims) {
	t.Helper()
	var c accesstoken.Claims
	code := call(t, "GET", cell.URL+"/whoami", access, nil, &c)
	return code, c
}

// kidOf reads the kid of a compact JWS header.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(mustB64(t, h), &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

func jwksKids(t testing.TB, g *global) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if code := call(t, "GET", g.JWKSURL(), "", nil, &set); code != 200 {
		t.Fatalf("jwks: %d", code)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.Alg != "EdDSA" {
			t.Errorf("jwks key %s alg %s", k.Kid, k.Alg)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

func count(t testing.TB, db *testenv.Database, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// clock is a settable time source shared by instances under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metricValue sums the samples of a counter family whose label has value
// (all samples when label is empty).
func metricValue(t testing.TB, g *global, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				sum += m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
