package accesstoken

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// RefreshingKeySet is an oidc.KeySet that refetches the JWKS every
// interval (and on an unknown kid, a few times a second at most, one
// fetch at a time that concurrent verifications wait for), so a signing
// key the issuer removed stops verifying within one interval; the
// library's RemoteKeySet keeps a removed key forever.
type RefreshingKeySet struct {
	url      string
	interval time.Duration
	client   *http.Client

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey // guarded by mu: by kid
	fetched time.Time                   // guarded by mu
	// budget limits refetches caused by unknown kids: 5 a second.
	budget      int       // guarded by mu
	budgetReset time.Time // guarded by mu
	// inflight is closed when the fetch in progress ends; nil when none.
	inflight chan struct{} // guarded by mu
}

// NewRefreshingKeySet returns a key set over jwksURL refreshed every
// interval (default 1 min) until ctx ends.
func NewRefreshingKeySet(ctx context.Context, jwksURL string, interval time.Duration) *RefreshingKeySet {
	if interval <= 0 {
		interval = time.Minute
	}
	k := &RefreshingKeySet{url: jwksURL, interval: interval, client: &http.Client{Timeout: 10 * time.Second}}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = k.refresh(ctx)
			}
		}
	}()
	return k
}

func (k *RefreshingKeySet) refresh(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	pubs := map[string]crypto.PublicKey{}
	for _, key := range set.Keys {
		if key.Use == "" || key.Use == "sig" {
			pubs[key.KeyID] = key.Key
		}
	}
	k.mu.Lock()
	k.keys, k.fetched = pubs, time.Now()
	k.mu.Unlock()
	return nil
}

// VerifySignature implements oidc.KeySet. A token whose kid is not in the
// current set waits for a refetch (a rotation): the one in flight, or a
// new one if the budget (five a second) allows; a known kid never causes
// a fetch.
func (k *RefreshingKeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("jwks: malformed token: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	key, err := k.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return payload, nil
}

func (k *RefreshingKeySet) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k.mu.Lock()
	if key, ok := k.keys[kid]; ok {
		k.mu.Unlock()
		return key, nil
	}
	wait := k.inflight
	if wait == nil {
		if now := time.Now(); now.After(k.budgetReset) {
			k.budget, k.budgetReset = 5, now.Add(time.Second)
		}
		if k.budget > 0 {
			k.budget--
			wait = make(chan struct{})
			k.inflight = wait
			go func() {
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_ = k.refresh(fctx)
				cancel()
				k.mu.Lock()
				k.inflight = nil
				k.mu.Unlock()
				close(wait)
			}()
		}
	}
	k.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("jwks: %w", ctx.Err())
		}
	}
	k.mu.Lock()
	key, ok := k.keys[kid]
	k.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("jwks: unknown key id %q", kid)
	}
	return key, nil
}
