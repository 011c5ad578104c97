package connecttoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestMintVerifyRoundTrip(t *testing.T) {
	priv := newKey(t)
	now := time.Now()
	in := Token{
		SessionID:  uuid.New(),
		PlayerID:   uuid.New(),
		ExpiresAt:  now.Add(30 * time.Second).Truncate(time.Millisecond),
		ServerAddr: netip.MustParseAddrPort("127.0.0.1:7777"),
	}
	b, err := Mint(priv, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != Size {
		t.Fatalf("len = %d, want %d", len(b), Size)
	}
	v, err := NewVerifier(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	out, err := v.Verify(b, now)
	if err != nil {
		t.Fatal(err)
	}
	if out.SessionID != in.SessionID || out.PlayerID != in.PlayerID || !out.ExpiresAt.Equal(in.ExpiresAt) || out.ServerAddr != in.ServerAddr {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	if out.Nonce == ([16]byte{}) {
		t.Fatal("nonce not filled")
	}
	s := EncodeString(b)
	b2, err := DecodeString(s)
	if err != nil || string(b2) != string(b) {
		t.Fatalf("string round trip failed: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	priv := newKey(t)
	other := newKey(t)
	now := time.Now()
	tok := Token{SessionID: uuid.New(), PlayerID: uuid.New(), ExpiresAt: now.Add(time.Minute), ServerAddr: netip.MustParseAddrPort("[::1]:9000")}
	good, _ := Mint(priv, tok)
	v, _ := NewVerifier(priv.Public().(ed25519.PublicKey))

	tampered := append([]byte(nil), good...)
	tampered[offPlayer] ^= 1
	foreign, _ := Mint(other, tok)
	expiredTok := tok
	expiredTok.ExpiresAt = now.Add(-time.Second)
	expired, _ := Mint(priv, expiredTok)

	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:10], ErrMalformed},
		{"version", append([]byte{9}, good[1:]...), ErrMalformed},
		{"tampered", tampered, ErrBadSignature},
		{"foreign key", foreign, ErrUnknownKey},
		{"expired", expired, ErrExpired},
	}
	for _, c := range cases {
		if _, err := v.Verify(c.b, now); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	priv := newKey(f)
	v, _ := NewVerifier(priv.Public().(ed25519.PublicKey))
	good, _ := Mint(priv, Token{SessionID: uuid.New(), PlayerID: uuid.New(), ExpiresAt: time.Now().Add(time.Hour), ServerAddr: netip.MustParseAddrPort("10.0.0.1:1")})
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := v.Verify(b, time.Now())
		if err == nil && string(b) != string(good) {
			// Any other accepted input would be a forgery.
			t.Fatalf("accepted forged token %+v", tok)
		}
		_, _ = Parse(b)
	})
}

// Precheck refuses what Verify would refuse without the signature, and
// passes a forged signature (that is Verify's job).
func TestPrecheck(t *testing.T) {
	priv := newKey(t)
	v, err := NewVerifier(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mint := func(k ed25519.PrivateKey, exp time.Time) []byte {
		b, err := Mint(k, Token{SessionID: uuid.New(), ExpiresAt: exp, ServerAddr: netip.MustParseAddrPort("127.0.0.1:1")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := mint(priv, now.Add(time.Minute))
	forged := append([]byte(nil), good...)
	forged[Size-1] ^= 1
	expired := mint(priv, now.Add(-time.Second))
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"good", good, nil},
		{"bad signature passes", forged, nil},
		{"short", good[:Size-1], ErrMalformed},
		{"version", append([]byte{2}, good[1:]...), ErrMalformed},
		{"unknown key", mint(newKey(t), now.Add(time.Minute)), ErrUnknownKey},
		{"expired", expired, ErrExpired},
	}
	for _, c := range cases {
		if _, err := v.Precheck(c.b, now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if tok, err := v.Precheck(expired, now); !errors.Is(err, ErrExpired) || tok.SessionID == uuid.Nil {
		t.Error("an expired token is not returned decoded")
	}
}
