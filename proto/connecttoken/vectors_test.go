package connecttoken_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

// update rewrites the hex (and derived) fields of testdata/vectors.json from
// their decoded JSON: go test ./proto/connecttoken -run Vectors -update.
// Review the diff by hand against docs/protocol.md before committing it.
var update = flag.Bool("update", false, "rewrite testdata/vectors.json hex from the decoded fields")

const vectorsFile = "testdata/vectors.json"

// vectorFile is the layout of testdata/vectors.json, documented in
// docs/protocol.md ("Test vectors").
type vectorFile struct {
	Comment string `json:"comment"`
	// Keys: Ed25519 seeds (RFC 8032), so signatures are deterministic.
	Keys    map[string]vectorKey `json:"keys"`
	Vectors []tokenVector        `json:"vectors"`
	Invalid []invalidVector      `json:"invalid"`
}

type vectorKey struct {
	Seed      string `json:"seed_hex"`
	PublicKey string `json:"public_key_hex"`
	KeyID     string `json:"key_id_hex"`
}

type tokenVector struct {
	Name     string       `json:"name"`
	Key      string       `json:"key"`
	VerifyAt int64        `json:"verify_at_unix_ms"`
	Token    decodedToken `json:"token"`
	Hex      string       `json:"hex"`
	Base64   string       `json:"base64url"`
}

type decodedToken struct {
	Version    int    `json:"version"`
	KeyID      string `json:"key_id_hex"`
	SessionID  string `json:"session_id"`
	PlayerID   string `json:"player_id"`
	ExpiresAt  int64  `json:"expires_at_unix_ms"`
	Nonce      string `json:"nonce_hex"`
	ServerAddr string `json:"server_addr"`
	Signature  string `json:"signature_hex"`
}

type invalidVector struct {
	Name     string `json:"name"`
	Hex      string `json:"hex"`
	VerifyAt int64  `json:"verify_at_unix_ms"`
	// Error is malformed | unknown_key | bad_signature | expired.
	Error string `json:"error"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	if len(f.Vectors) == 0 || len(f.Invalid) == 0 {
		t.Fatalf("%s: no vectors", vectorsFile)
	}
	return f
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func keyOf(t *testing.T, f vectorFile, name string) ed25519.PrivateKey {
	t.Helper()
	k, ok := f.Keys[name]
	if !ok {
		t.Fatalf("unknown key %q", name)
	}
	return ed25519.NewKeyFromSeed(unhex(t, k.Seed))
}

// decode turns token bytes into the JSON form of the vectors.
func decode(b []byte, tok connecttoken.Token) decodedToken {
	return decodedToken{
		Version:    int(b[0]),
		KeyID:      hex.EncodeToString(b[1:9]),
		SessionID:  tok.SessionID.String(),
		PlayerID:   tok.PlayerID.String(),
		ExpiresAt:  tok.ExpiresAt.UnixMilli(),
		Nonce:      hex.EncodeToString(tok.Nonce[:]),
		ServerAddr: tok.ServerAddr.String(),
		Signature:  hex.EncodeToString(b[connecttoken.Size-ed25519.SignatureSize:]),
	}
}

// encode mints the token the decoded JSON describes.
func encode(t *testing.T, priv ed25519.PrivateKey, d decodedToken) []byte {
	t.Helper()
	var nonce [16]byte
	if n := unhex(t, d.Nonce); copy(nonce[:], n) != 16 || len(n) != 16 {
		t.Fatalf("nonce %q is not 16 bytes", d.Nonce)
	}
	b, err := connecttoken.Mint(priv, connecttoken.Token{
		SessionID:  uuid.MustParse(d.SessionID),
		PlayerID:   uuid.MustParse(d.PlayerID),
		ExpiresAt:  time.UnixMilli(d.ExpiresAt),
		Nonce:      nonce,
		ServerAddr: netip.MustParseAddrPort(d.ServerAddr),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectorKeys(t *testing.T) {
	f := loadVectors(t)
	for name, k := range f.Keys {
		pub := keyOf(t, f, name).Public().(ed25519.PublicKey)
		kid := connecttoken.KeyID(pub)
		if got := hex.EncodeToString(pub); got != k.PublicKey && !*update {
			t.Errorf("key %s: public key %s, file says %s", name, got, k.PublicKey)
		}
		if got := hex.EncodeToString(kid[:]); got != k.KeyID && !*update {
			t.Errorf("key %s: key id %s, file says %s", name, got, k.KeyID)
		}
	}
}

// TestVectors replays every vector both ways: the hex verifies (with the
// public key, at verify_at) and decodes to the JSON; the JSON, minted with
// the seed, encodes to the hex.
func TestVectors(t *testing.T) {
	f := loadVectors(t)
	if *update {
		regenerate(t, &f)
	}
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			priv := keyOf(t, f, v.Key)
			b := unhex(t, v.Hex)
			// decode
			ver, err := connecttoken.NewVerifier(priv.Public().(ed25519.PublicKey))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ver.Verify(b, time.UnixMilli(v.VerifyAt))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if got := decode(b, tok); got != v.Token {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, v.Token)
			}
			if s, err := connecttoken.DecodeString(v.Base64); err != nil || !bytes.Equal(s, b) {
				t.Fatalf("base64url %q does not decode to the hex (err %v)", v.Base64, err)
			}
			// encode
			if got := encode(t, priv, v.Token); !bytes.Equal(got, b) {
				t.Fatalf("encoded\n%x\nwant\n%s", got, v.Hex)
			}
			if got := connecttoken.EncodeString(b); got != v.Base64 {
				t.Fatalf("base64url %s, want %s", got, v.Base64)
			}
		})
	}
	for _, v := range f.Invalid {
		t.Run("invalid/"+v.Name, func(t *testing.T) {
			ver, err := connecttoken.NewVerifier(keyOf(t, f, "cell").Public().(ed25519.PublicKey))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]error{
				"malformed": connecttoken.ErrMalformed, "unknown_key": connecttoken.ErrUnknownKey,
				"bad_signature": connecttoken.ErrBadSignature, "expired": connecttoken.ErrExpired,
			}[v.Error]
			if want == nil {
				t.Fatalf("unknown error %q", v.Error)
			}
			if _, err := ver.Verify(unhex(t, v.Hex), time.UnixMilli(v.VerifyAt)); !errors.Is(err, want) {
				t.Fatalf("verify: %v, want %v", err, want)
			}
		})
	}
	if *update {
		b, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote", vectorsFile)
	}
}

// regenerate fills the derived fields from the decoded ones. The invalid
// vectors are derived from the first valid one.
func regenerate(t *testing.T, f *vectorFile) {
	for name, k := range f.Keys {
		pub := keyOf(t, *f, name).Public().(ed25519.PublicKey)
		kid := connecttoken.KeyID(pub)
		k.PublicKey, k.KeyID = hex.EncodeToString(pub), hex.EncodeToString(kid[:])
		f.Keys[name] = k
	}
	for i := range f.Vectors {
		v := &f.Vectors[i]
		b := encode(t, keyOf(t, *f, v.Key), v.Token)
		tok, err := connecttoken.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		v.Hex, v.Base64, v.Token = hex.EncodeToString(b), connecttoken.EncodeString(b), decode(b, tok)
	}
	good := unhex(t, f.Vectors[0].Hex)
	for i := range f.Invalid {
		v := &f.Invalid[i]
		b := append([]byte(nil), good...)
		switch v.Name {
		case "tampered_player_id":
			b[25] ^= 0x01
		case "expired":
			v.VerifyAt = f.Vectors[0].Token.ExpiresAt
		case "unknown_key":
			b = encode(t, keyOf(t, *f, "other"), f.Vectors[0].Token)
		case "version_2":
			b[0] = 2
		case "truncated":
			b = b[:connecttoken.Size-1]
		default:
			t.Fatalf("regenerate: no recipe for invalid vector %q", v.Name)
		}
		if v.VerifyAt == 0 {
			v.VerifyAt = f.Vectors[0].VerifyAt
		}
		v.Hex = hex.EncodeToString(b)
	}
}
