package accesstoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwksServer serves a mutable JWKS, like the global layer does.
type jwksServer struct {
	mu   sync.Mutex
	keys []jose.JSONWebKey
	hits int
}

func (j *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.hits++
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
}

func newKey(t *testing.T, kid string) SigningKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return SigningKey{KID: kid, Private: priv}
}

func TestVerifyAndRotation(t *testing.T) {
	js := &jwksServer{}
	srv := httptest.NewServer(js)
	defer srv.Close()
	k1 := newKey(t, "k1")
	js.keys = []jose.JSONWebKey{PublicJWK("k1", k1.Private.Public().(ed25519.PublicKey))}
	const iss = "https://global.test"
	ctx := context.Background()
	v := NewRemoteVerifier(ctx, iss, srv.URL)

	tok, err := Sign(k1, iss, Claims{PlayerID: "p1", Username: "ana"}, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tok)
	if err != nil || c.PlayerID != "p1" || c.Username != "ana" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	// Cached: a second verification does not refetch.
	js.mu.Lock()
	hits := js.hits
	js.mu.Unlock()
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	js.mu.Lock()
	if js.hits != hits {
		t.Errorf("JWKS refetched for a known kid (%d → %d)", hits, js.hits)
	}
	// Rotation: a token with a new kid makes the verifier refetch.
	k2 := newKey(t, "k2")
	js.keys = append(js.keys, PublicJWK("k2", k2.Private.Public().(ed25519.PublicKey)))
	js.mu.Unlock()
	tok2, _ := Sign(k2, iss, Claims{PlayerID: "p2"}, time.Now(), time.Minute)
	if c, err := v.Verify(ctx, tok2); err != nil || c.PlayerID != "p2" {
		t.Fatalf("after rotation: %+v %v", c, err)
	}

	// Refusals.
	other := newKey(t, "k1") // same kid, different key
	forged, _ := Sign(other, iss, Claims{PlayerID: "p1"}, time.Now(), time.Minute)
	expired, _ := Sign(k1, iss, Claims{PlayerID: "p1"}, time.Now().Add(-time.Hour), time.Minute)
	wrongIss, _ := Sign(k1, "https://evil", Claims{PlayerID: "p1"}, time.Now(), time.Minute)
	for name, raw := range map[string]string{"forged": forged, "expired": expired, "issuer": wrongIss, "garbage": "a.b.c"} {
		if _, err := v.Verify(ctx, raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestMiddleware(t *testing.T) {
	js := &jwksServer{}
	srv := httptest.NewServer(js)
	defer srv.Close()
	k := newKey(t, "k")
	js.keys = []jose.JSONWebKey{PublicJWK("k", k.Private.Public().(ed25519.PublicKey))}
	v := NewRemoteVerifier(context.Background(), "iss", srv.URL)
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := FromContext(r.Context())
		w.Write([]byte(c.PlayerID))
	}))
	tok, _ := Sign(k, "iss", Claims{PlayerID: "p9"}, time.Now(), time.Minute)
	for _, tc := range []struct {
		auth string
		code int
	}{{"Bearer " + tok, 200}, {"", 401}, {"Bearer nope", 401}, {tok, 401}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("auth %.20q: %d, want %d", tc.auth, rec.Code, tc.code)
		}
		if tc.code == 200 && rec.Body.String() != "p9" {
			t.Errorf("claims not in context: %q", rec.Body)
		}
	}
}
