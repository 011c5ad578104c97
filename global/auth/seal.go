package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/google/uuid"
)

// sealVersion prefixes every sealed value so the format (or the key) can
// change later without guessing.
const sealVersion byte = 1

// Sealer encrypts small secrets at rest (emails, signing keys) with
// AES-256-GCM. Each value carries its own random nonce; the additional data
// binds a ciphertext to where it belongs (a player id, a kid), so a sealed
// value copied into another row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: need 32 bytes, got %d", ErrBadKey, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad: version || nonce || ciphertext+tag.
func (s *Sealer) Seal(plaintext, aad []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return s.aead.Seal(out, out[1:], plaintext, aad)
}

// Open decrypts a value made by Seal with the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: malformed sealed value", ErrBadKey)
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed value does not open", ErrBadKey)
	}
	return pt, nil
}

// EmailAAD is the additional data binding players.email_enc to its row.
func EmailAAD(playerID uuid.UUID) []byte {
	return append([]byte("cellgrid/players.email_enc/"), playerID[:]...)
}

func signingKeyAAD(kid string) []byte {
	return []byte("cellgrid/signing_keys.private_key/" + kid)
}
