package connecttoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// Wire layout (big endian), version 1:
//
//	0      1 byte   version (1)
//	1      8 bytes  key id (first 8 bytes of SHA-256 of the public key)
//	9      16 bytes session id (UUID)
//	25     16 bytes player id (UUID)
//	41     8 bytes  expiry, Unix milliseconds
//	49     16 bytes nonce (random)
//	65     18 bytes game server address: 16-byte IPv6 (IPv4-mapped for v4) + 2-byte port
//	83     64 bytes Ed25519 signature over bytes [0,83)
//
// Size is always 147 bytes, small enough to ride in one datagram with room
// for a protocol header.
const (
	version     = 1
	signedLen   = 83
	Size        = signedLen + ed25519.SignatureSize
	keyIDLen    = 8
	offKeyID    = 1
	offSession  = 9
	offPlayer   = 25
	offExpiry   = 41
	offNonce    = 49
	offAddr     = 65
	offSig      = signedLen
	addrIPBytes = 16
)

// Errors returned by Verify. Callers may test them with errors.Is.
var (
	// ErrMalformed means the bytes are not a connect token of a known version.
	ErrMalformed = errors.New("connect token malformed")
	// ErrUnknownKey means no trusted public key matches the token's key id.
	ErrUnknownKey = errors.New("connect token signed by unknown key")
	// ErrBadSignature means the signature does not verify.
	ErrBadSignature = errors.New("connect token signature invalid")
	// ErrExpired means the token's expiry is in the past.
	ErrExpired = errors.New("connect token expired")
)

// Token is the decoded content of a connect token.
type Token struct {
	SessionID  uuid.UUID
	PlayerID   uuid.UUID
	ExpiresAt  time.Time
	Nonce      [16]byte
	ServerAddr netip.AddrPort // the DGS game port the relay forwards to
}

// KeyID returns the 8-byte identifier of a public key embedded in tokens.
func KeyID(pub ed25519.PublicKey) [keyIDLen]byte {
	sum := sha256.Sum256(pub)
	var id [keyIDLen]byte
	copy(id[:], sum[:keyIDLen])
	return id
}

// Mint signs t with priv. A zero Nonce is replaced by a random one.
func Mint(priv ed25519.PrivateKey, t Token) ([]byte, error) {
	if t.ExpiresAt.IsZero() {
		return nil, fmt.Errorf("mint connect token: %w: zero expiry", ErrMalformed)
	}
	if !t.ServerAddr.IsValid() {
		return nil, fmt.Errorf("mint connect token: %w: invalid server address", ErrMalformed)
	}
	if t.Nonce == ([16]byte{}) {
		if _, err := rand.Read(t.Nonce[:]); err != nil {
			return nil, fmt.Errorf("mint connect token: nonce: %w", err)
		}
	}
	b := make([]byte, Size)
	b[0] = version
	kid := KeyID(priv.Public().(ed25519.PublicKey))
	copy(b[offKeyID:], kid[:])
	copy(b[offSession:], t.SessionID[:])
	copy(b[offPlayer:], t.PlayerID[:])
	binary.BigEndian.PutUint64(b[offExpiry:], uint64(t.ExpiresAt.UnixMilli()))
	copy(b[offNonce:], t.Nonce[:])
	ip := t.ServerAddr.Addr().As16()
	copy(b[offAddr:], ip[:])
	binary.BigEndian.PutUint16(b[offAddr+addrIPBytes:], t.ServerAddr.Port())
	copy(b[offSig:], ed25519.Sign(priv, b[:signedLen]))
	return b, nil
}

// Parse decodes b without checking the signature or expiry. Use Verify for
// anything that came from the network.
func Parse(b []byte) (Token, error) {
	if len(b) != Size || b[0] != version {
		return Token{}, ErrMalformed
	}
	var t Token
	copy(t.SessionID[:], b[offSession:])
	copy(t.PlayerID[:], b[offPlayer:])
	t.ExpiresAt = time.UnixMilli(int64(binary.BigEndian.Uint64(b[offExpiry:])))
	copy(t.Nonce[:], b[offNonce:])
	var ip [16]byte
	copy(ip[:], b[offAddr:])
	addr := netip.AddrFrom16(ip).Unmap()
	t.ServerAddr = netip.AddrPortFrom(addr, binary.BigEndian.Uint16(b[offAddr+addrIPBytes:]))
	return t, nil
}

// Verifier checks tokens against a set of trusted public keys (several are
// allowed so a cell can rotate its key without invalidating tokens in flight).
type Verifier struct {
	keys map[[keyIDLen]byte]ed25519.PublicKey
}

// NewVerifier returns a Verifier trusting pubs.
func NewVerifier(pubs ...ed25519.PublicKey) (*Verifier, error) {
	if len(pubs) == 0 {
		return nil, errors.New("connect token verifier: no public keys")
	}
	v := &Verifier{keys: make(map[[keyIDLen]byte]ed25519.PublicKey, len(pubs))}
	for _, p := range pubs {
		if len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("connect token verifier: public key has %d bytes, want %d", len(p), ed25519.PublicKeySize)
		}
		v.keys[KeyID(p)] = p
	}
	return v, nil
}

// Precheck does Verify's cheap checks -- size, version, key id, expiry --
// without the signature, so a flood of forged or stale tokens is refused
// before any Ed25519 work. It returns the decoded (unauthenticated) token
// with ErrExpired too. A nil error proves nothing: Verify must follow.
func (v *Verifier) Precheck(b []byte, now time.Time) (Token, error) {
	if len(b) != Size || b[0] != version {
		return Token{}, ErrMalformed
	}
	var kid [keyIDLen]byte
	copy(kid[:], b[offKeyID:])
	if _, ok := v.keys[kid]; !ok {
		return Token{}, ErrUnknownKey
	}
	t, err := Parse(b)
	if err != nil {
		return Token{}, err
	}
	if !now.Before(t.ExpiresAt) {
		return t, ErrExpired
	}
	return t, nil
}

// Verify checks the version, key, signature and expiry of b at time now.
// It does not check replay or whether the session is live: the caller owns
// that state.
func (v *Verifier) Verify(b []byte, now time.Time) (Token, error) {
	if len(b) != Size || b[0] != version {
		return Token{}, ErrMalformed
	}
	var kid [keyIDLen]byte
	copy(kid[:], b[offKeyID:])
	pub, ok := v.keys[kid]
	if !ok {
		return Token{}, ErrUnknownKey
	}
	if !ed25519.Verify(pub, b[:signedLen], b[offSig:]) {
		return Token{}, ErrBadSignature
	}
	t, err := Parse(b)
	if err != nil {
		return Token{}, err
	}
	if !now.Before(t.ExpiresAt) {
		return Token{}, ErrExpired
	}
	return t, nil
}

// EncodeString returns the token in the unpadded URL-safe base64 form used in
// JSON APIs.
func EncodeString(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeString is the inverse of EncodeString.
func DecodeString(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// ParsePublicKey decodes a base64 (std or URL, padded or not) Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("parse connect token public key: want %d bytes of base64", ed25519.PublicKeySize)
}
