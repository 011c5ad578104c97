package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// discoveryRetry is how long a failed discovery is remembered before the
// next login tries again.
const discoveryRetry = time.Second

// issuerVerifier verifies the ID tokens of one configured issuer. Discovery
// runs on first use (so global starts while an IdP is down) and is cached.
type issuerVerifier struct {
	cfg    OIDCIssuer
	client *http.Client
	now    func() time.Time

	mu sync.Mutex
	// mu guards the following fields.
	v        *oidc.IDTokenVerifier // nil until discovery succeeded
	lastErr  error
	lastFail time.Time
}

func (iv *issuerVerifier) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.v != nil {
		return iv.v, nil
	}
	if iv.lastErr != nil && time.Since(iv.lastFail) < discoveryRetry {
		return nil, iv.lastErr
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, iv.client), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, iv.cfg.Issuer)
	if err != nil {
		iv.lastErr = fmt.Errorf("%w: discovery %s: %v", ErrIssuerUnavailable, iv.cfg.Issuer, err)
		iv.lastFail = time.Now()
		return nil, iv.lastErr
	}
	// The key set outlives this request: give it a context of its own that
	// only carries the HTTP client.
	iv.v = p.VerifierContext(oidc.ClientContext(context.Background(), iv.client), &oidc.Config{
		ClientID:             iv.cfg.ClientID,
		SupportedSigningAlgs: iv.cfg.Algs,
		Now:                  iv.now,
	})
	return iv.v, nil
}

// idClaims are the ID-token claims login uses.
type idClaims struct {
	Subject           string `json:"sub"`
	Email             string `json:"email"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
	// raw is the whole verified payload, for Deps.OnLogin.
	raw json.RawMessage
}

// verifyIDToken picks the configured issuer named by the token's (not yet
// trusted) iss claim and verifies the token against it: signature with the
// issuer's published keys, allowed algorithm, exact iss, aud containing the
// client id, expiry.
func (a *Auth) verifyIDToken(ctx context.Context, raw string) (issuer string, c idClaims, err error) {
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return "", idClaims{}, fmt.Errorf("%w: %v", ErrInvalidIDToken, err)
	}
	iv, ok := a.issuers[iss]
	if !ok {
		return "", idClaims{}, fmt.Errorf("%w: issuer %q not configured", ErrInvalidIDToken, iss)
	}
	v, err := iv.verifier(ctx)
	if err != nil {
		return "", idClaims{}, err
	}
	tok, err := v.Verify(oidc.ClientContext(ctx, iv.client), raw)
	if err != nil {
		return "", idClaims{}, fmt.Errorf("%w: %v", ErrInvalidIDToken, err)
	}
	if err := tok.Claims(&c); err != nil {
		return "", idClaims{}, fmt.Errorf("%w: claims: %v", ErrInvalidIDToken, err)
	}
	_ = tok.Claims(&c.raw)
	if c.Subject == "" || len(c.Subject) > 255 {
		return "", idClaims{}, fmt.Errorf("%w: bad subject", ErrInvalidIDToken)
	}
	if len(c.Email) > 320 {
		c.Email = ""
	}
	return iv.cfg.Issuer, c, nil
}

// unverifiedIssuer reads iss from a JWT's payload without checking anything;
// only used to choose which issuer's verifier checks the token.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("payload: %v", err)
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("payload: %v", err)
	}
	if c.Issuer == "" {
		return "", errors.New("no iss claim")
	}
	return c.Issuer, nil
}
