package accesstoken

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// Audience is the aud claim of every access token.
const Audience = "cellgrid"

// DefaultTTL is the default access-token lifetime.
const DefaultTTL = 15 * time.Minute

// Claims are the cellgrid-specific claims of an access token.
type Claims struct {
	PlayerID string `json:"sub"`
	Username string `json:"name,omitempty"`
	// Family is the refresh-token family the token was issued under, so a
	// logout can be tied to it.
	Family string `json:"fam,omitempty"`
}

// SigningKey is one EdDSA key with its kid.
type SigningKey struct {
	KID     string
	Private ed25519.PrivateKey
}

// Sign returns a compact JWT for c, valid from now for ttl.
func Sign(key SigningKey, issuer string, c Claims, now time.Time, ttl time.Duration) (string, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.KID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("access token signer: %w", err)
	}
	std := jwt.Claims{
		Issuer:    issuer,
		Subject:   c.PlayerID,
		Audience:  jwt.Audience{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.Signed(sig).Claims(std).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// PublicJWK returns the public half of key as a JWK for the JWKS document.
func PublicJWK(kid string, pub ed25519.PublicKey) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"}
}

// ErrInvalid is wrapped by every verification failure.
var ErrInvalid = errors.New("invalid access token")

// Verifier checks access tokens issued by one issuer.
type Verifier struct {
	v   *oidc.IDTokenVerifier
	now func() time.Time
	// Deny holds withdrawn tokens (logout, erasure, ban), checked after
	// the signature. Cells fill it from the global layer's revocations.
	Deny DenyList
}

// NewVerifier verifies tokens of issuer using keys (see NewRemoteVerifier
// for the usual JWKS-backed set). now may be nil (time.Now).
func NewVerifier(issuer string, keys oidc.KeySet, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{now: now, v: oidc.NewVerifier(issuer, keys, &oidc.Config{
		ClientID:             Audience,
		SupportedSigningAlgs: []string{oidc.EdDSA},
		Now:                  now,
	})}
}

// JWKSRefresh is how often a remote verifier refetches the JWKS, so a key
// the issuer removed stops verifying within it.
const JWKSRefresh = time.Minute

// NewRemoteVerifier verifies tokens against the JWKS at jwksURL, refetched
// every JWKSRefresh and on an unknown kid. ctx bounds the background
// fetches.
func NewRemoteVerifier(ctx context.Context, issuer, jwksURL string) *Verifier {
	return NewVerifier(issuer, NewRefreshingKeySet(ctx, jwksURL, JWKSRefresh), nil)
}

// Verify checks signature, alg, issuer, audience and expiry and returns the claims.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	tok, err := v.v.Verify(ctx, raw)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var c Claims
	if err := tok.Claims(&c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	if c.PlayerID == "" {
		return Claims{}, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	if v.Deny.Denied(c.Family, c.PlayerID, tok.IssuedAt, v.now()) {
		return Claims{}, fmt.Errorf("%w: revoked", ErrInvalid)
	}
	return c, nil
}

type ctxKey struct{}

// FromContext returns the verified claims put there by Middleware.
func FromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(Claims)
	return c, ok
}

// WithClaims returns ctx carrying c (for tests and internal callers).
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// Middleware requires a valid "Authorization: Bearer <token>" and stores
// the claims in the request context; otherwise it answers 401.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			httpapi.WriteError(w, httpapi.Unauthorized("missing bearer token"))
			return
		}
		c, err := v.Verify(r.Context(), raw)
		if err != nil {
			httpapi.WriteError(w, httpapi.Unauthorized("invalid or expired access token"))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// Caller returns the player id of the access token Middleware verified for
// r, or a 401 *httpapi.Error when there is none or its subject is not a
// player id.
func Caller(r *http.Request) (uuid.UUID, error) {
	c, ok := FromContext(r.Context())
	if !ok {
		return uuid.Nil, httpapi.Unauthorized("missing access token")
	}
	id, err := uuid.Parse(c.PlayerID)
	if err != nil {
		return uuid.Nil, httpapi.Unauthorized("access token subject is not a player id")
	}
	return id, nil
}
