package auth

import (
	"bytes"
	"testing"
	"time"
)

func TestUsernameRules(t *testing.T) {
	for s, want := range map[string]bool{
		"abc": true, "A_b_9": true, "abcdefghij0123456789": true,
		"ab": false, "abcdefghij0123456789x": false, "a-b": false, "a b": false, "émile": false, "": false,
	} {
		if ValidUsername(s) != want {
			t.Errorf("ValidUsername(%q) = %v", s, !want)
		}
	}
	for in, want := range map[string]string{
		"Alice.Smith":            "Alice_Smith",
		"bob@example.com":        "bob",
		"__x__y__":               "x_y",
		"a":                      "player",
		"":                       "player",
		"averyveryverylongname1": "averyveryverylo",
		"émile zola":             "mile_zola",
	} {
		got := usernameBase(in)
		if got != want || !ValidUsername(got) {
			t.Errorf("usernameBase(%q) = %q, want %q", in, got, want)
		}
	}
	if got := usernameBase("", "x", "Real Name"); got != "Real_Name" {
		t.Errorf("fallback to later hint: %q", got)
	}
	for _, c := range usernameCandidates("averyveryverylo", 8) {
		if !ValidUsername(c) {
			t.Errorf("candidate %q invalid", c)
		}
	}
}

func TestSealer(t *testing.T) {
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Fatal("16-byte key accepted")
	}
	s, _ := NewSealer(bytes.Repeat([]byte{1}, 32))
	other, _ := NewSealer(bytes.Repeat([]byte{2}, 32))
	a, b := s.Seal([]byte("x@y.z"), []byte("p1")), s.Seal([]byte("x@y.z"), []byte("p1"))
	if bytes.Equal(a, b) {
		t.Error("sealing is deterministic (nonce reuse)")
	}
	if pt, err := s.Open(a, []byte("p1")); err != nil || string(pt) != "x@y.z" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := s.Open(a, []byte("p2")); err == nil {
		t.Error("opens under another aad")
	}
	if _, err := other.Open(a, []byte("p1")); err == nil {
		t.Error("opens under another key")
	}
	a[len(a)-1] ^= 1
	if _, err := s.Open(a, []byte("p1")); err == nil {
		t.Error("opens when tampered")
	}
}

func TestPublishedKeys(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	keys := []signingKey{
		{kid: "k1", activeFrom: t0},
		{kid: "k2", activeFrom: t0.Add(time.Hour)},
		{kid: "k3", activeFrom: t0.Add(3 * time.Hour)}, // not active yet at t0+2h
	}
	kids := func(ks []signingKey) (out []string) {
		for _, k := range ks {
			out = append(out, k.kid)
		}
		return out
	}
	keep := 20 * time.Minute
	if got := kids(published(keys, t0.Add(70*time.Minute), keep)); len(got) != 3 {
		t.Errorf("k1 replaced 10 min ago must stay: %v", got)
	}
	if got := kids(published(keys, t0.Add(2*time.Hour), keep)); len(got) != 2 || got[0] != "k2" {
		t.Errorf("k1 replaced an hour ago must go, k3 (future) must be there: %v", got)
	}
}
