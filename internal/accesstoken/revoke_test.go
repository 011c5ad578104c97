package accesstoken

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestDenyList(t *testing.T) {
	js := &jwksServer{}
	srv := httptest.NewServer(js)
	defer srv.Close()
	k := newKey(t, "k")
	js.keys = []jose.JSONWebKey{PublicJWK("k", k.Private.Public().(ed25519.PublicKey))}
	ctx := context.Background()
	v := NewRemoteVerifier(ctx, "iss", srv.URL)
	now := time.Now()
	old, _ := Sign(k, "iss", Claims{PlayerID: "p1", Family: "f1"}, now.Add(-time.Minute), time.Hour)
	otherFam, _ := Sign(k, "iss", Claims{PlayerID: "p1", Family: "f2"}, now.Add(-time.Minute), time.Hour)
	otherPlayer, _ := Sign(k, "iss", Claims{PlayerID: "p2", Family: "f3"}, now.Add(-time.Minute), time.Hour)
	for _, tok := range []string{old, otherFam, otherPlayer} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	v.Deny.Add(Denial{Family: "f1", IssuedBefore: now, Expires: now.Add(time.Hour)})
	if _, err := v.Verify(ctx, old); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoked family: %v", err)
	}
	if _, err := v.Verify(ctx, otherFam); err != nil {
		t.Fatalf("the player's other family: %v", err)
	}
	// Erasure: every token of the subject issued before.
	v.Deny.Add(Denial{Subject: "p1", IssuedBefore: now, Expires: now.Add(time.Hour)})
	if _, err := v.Verify(ctx, otherFam); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoked subject: %v", err)
	}
	if _, err := v.Verify(ctx, otherPlayer); err != nil {
		t.Fatalf("another player: %v", err)
	}
	// A token issued after the revocation works (a new login).
	fresh, _ := Sign(k, "iss", Claims{PlayerID: "p1", Family: "f9"}, now.Add(2*time.Second), time.Hour)
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatalf("token issued after the revocation: %v", err)
	}
	// Denials expire with the tokens they match.
	if !v.Deny.Denied("f1", "", now.Add(-time.Minute), now) || v.Deny.Denied("f1", "", now.Add(-time.Minute), now.Add(2*time.Hour)) {
		t.Fatal("denial expiry")
	}
}

func TestRemovedSigningKeyStopsVerifying(t *testing.T) {
	js := &jwksServer{}
	srv := httptest.NewServer(js)
	defer srv.Close()
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	js.keys = []jose.JSONWebKey{PublicJWK("k1", k1.Private.Public().(ed25519.PublicKey)), PublicJWK("k2", k2.Private.Public().(ed25519.PublicKey))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := NewVerifier("iss", NewRefreshingKeySet(ctx, srv.URL, 50*time.Millisecond), nil)
	tok, _ := Sign(k1, "iss", Claims{PlayerID: "p1"}, time.Now(), time.Hour)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	js.mu.Lock()
	js.keys = js.keys[1:] // the issuer drops k1 (compromised)
	js.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(ctx, tok)
		if errors.Is(err, ErrInvalid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("a removed key still verifies: %v", err))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
