package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	_ "crypto/sha256" // registers crypto.SHA256 for thumbprints
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// skew is the clock difference tolerated between global instances and
// verifiers when deciding how long a replaced key stays published.
const skew = time.Minute

// errNoSigningKey: the key table is empty or unreadable and nothing is cached.
var errNoSigningKey = errors.New("no signing key")

// signingKey is one row of signing_keys, opened.
type signingKey struct {
	kid        string
	generation int64
	private    ed25519.PrivateKey
	public     ed25519.PublicKey
	createdAt  time.Time
	activeFrom time.Time
}

// keyring caches the signing keys of the database. It has no goroutine:
// callers (sign, JWKS, verify) reload it when the cache is older than
// KeyRefresh, and a reload replaces the newest key once it is older than
// KeyLifetime.
type keyring struct {
	pool         *pgxpool.Pool
	sealer       *Sealer
	now          func() time.Time
	log          *slog.Logger
	accessTTL    time.Duration
	lifetime     time.Duration
	refresh      time.Duration
	publishAhead time.Duration
	onRotate     func()

	// reloadMu serialises reloads (one DB round trip at a time, the others
	// keep using the cache).
	reloadMu sync.Mutex

	mu sync.RWMutex
	// mu guards the following fields.
	keys     []signingKey // by generation, ascending
	loadedAt time.Time    // zero: never loaded
}

// reload reads the key table unless another caller did so less than
// maxAge ago; when the table is empty or the newest key is past its
// lifetime it first inserts the next generation.
func (k *keyring) reload(ctx context.Context, maxAge time.Duration) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	k.mu.RLock()
	fresh := len(k.keys) > 0 && k.now().Sub(k.loadedAt) < maxAge
	k.mu.RUnlock()
	if fresh {
		return nil
	}
	if _, err := k.rotate(ctx, true); err != nil {
		return err
	}
	return k.readLocked(ctx)
}

// rotateNow inserts the next generation unconditionally and reloads.
func (k *keyring) rotateNow(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	if _, err := k.rotate(ctx, false); err != nil {
		return err
	}
	return k.readLocked(ctx)
}

// readLocked loads all keys. reloadMu must be held.
func (k *keyring) readLocked(ctx context.Context) error {
	rows, err := k.pool.Query(ctx, `SELECT kid, generation, alg, private_key, public_key, created_at, active_from
		FROM signing_keys WHERE generation IS NOT NULL ORDER BY generation`)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	var keys []signingKey
	for rows.Next() {
		var (
			sk       signingKey
			alg      string
			priv     []byte
			pub      []byte
			activeAt time.Time
		)
		if err := rows.Scan(&sk.kid, &sk.generation, &alg, &priv, &pub, &sk.createdAt, &activeAt); err != nil {
			rows.Close()
			return fmt.Errorf("load signing keys: %w", err)
		}
		if alg != string(jose.EdDSA) {
			continue
		}
		seed, err := k.sealer.Open(priv, signingKeyAAD(sk.kid))
		if err != nil {
			rows.Close()
			return fmt.Errorf("open signing key %s: %w", sk.kid, err)
		}
		if len(seed) != ed25519.SeedSize || len(pub) != ed25519.PublicKeySize {
			rows.Close()
			return fmt.Errorf("signing key %s: bad length", sk.kid)
		}
		sk.private = ed25519.NewKeyFromSeed(seed)
		sk.public = ed25519.PublicKey(pub)
		sk.activeFrom = activeAt
		keys = append(keys, sk)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].generation < keys[j].generation })
	k.mu.Lock()
	k.keys = keys
	k.loadedAt = k.now()
	k.mu.Unlock()
	return nil
}

// rotate inserts the next key generation. With onlyIfDue it does so only
// when there is no key or the newest is older than the key lifetime. The
// insert is ON CONFLICT (generation) DO NOTHING inside a SERIALIZABLE
// transaction, so instances racing to create generation n end with one
// key n. It reports whether this call inserted the key.
func (k *keyring) rotate(ctx context.Context, onlyIfDue bool) (bool, error) {
	var inserted bool
	err := db.RunTx(ctx, k.pool, func(ctx context.Context, tx pgx.Tx) error {
		inserted = false
		now := k.now()
		var (
			gen     *int64
			created *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT generation, created_at FROM signing_keys
			WHERE generation IS NOT NULL ORDER BY generation DESC LIMIT 1`).Scan(&gen, &created)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("newest signing key: %w", err)
		}
		first := gen == nil
		if onlyIfDue && !first && now.Sub(*created) < k.lifetime {
			return nil
		}
		next := int64(1)
		activeFrom := now
		if !first {
			next = *gen + 1
			activeFrom = now.Add(k.publishAhead)
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate signing key: %w", err)
		}
		kid, err := thumbprint(pub)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, alg, private_key, public_key, created_at, active_from, generation)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (generation) DO NOTHING`,
			kid, string(jose.EdDSA), k.sealer.Seal(priv.Seed(), signingKeyAAD(kid)), []byte(pub), now, activeFrom, next)
		if err != nil {
			return fmt.Errorf("insert signing key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // another instance created this generation
		}
		inserted = true
		// The previous keys stop signing when the new one becomes active.
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retired_at = $1
			WHERE generation < $2 AND retired_at IS NULL`, activeFrom, next); err != nil {
			return fmt.Errorf("retire signing keys: %w", err)
		}
		// Keys whose last token expired long ago are of no use to anyone.
		if _, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE retired_at < $1`,
			now.Add(-(k.keepAfterRetire() + time.Hour))); err != nil {
			return fmt.Errorf("delete old signing keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("rotate signing key: %w", err)
	}
	if inserted && k.onRotate != nil {
		k.onRotate()
	}
	return inserted, nil
}

// keepAfterRetire is how long a replaced key stays published: its last
// token's lifetime, plus the time an instance may go without noticing the
// rotation, plus clock skew.
func (k *keyring) keepAfterRetire() time.Duration {
	return k.accessTTL + k.refresh + skew
}

// snapshot returns the cached keys, reloading first when the cache is
// older than KeyRefresh (or force is set and the last load is over a
// second old). A failed reload keeps the stale cache and is logged.
func (k *keyring) snapshot(ctx context.Context, force bool) ([]signingKey, error) {
	k.mu.RLock()
	keys, loadedAt := k.keys, k.loadedAt
	k.mu.RUnlock()
	maxAge := k.refresh
	if force {
		maxAge = time.Second
	}
	if len(keys) == 0 || k.now().Sub(loadedAt) >= maxAge {
		if err := k.reload(ctx, maxAge); err != nil {
			if len(keys) == 0 {
				return nil, fmt.Errorf("%w: %v", errNoSigningKey, err)
			}
			k.log.Warn("signing keys: reload failed, using cached keys", "err", err)
			return keys, nil
		}
		k.mu.RLock()
		keys = k.keys
		k.mu.RUnlock()
	}
	return keys, nil
}

// signer returns the key to sign with now: the newest that is active.
func (k *keyring) signer(ctx context.Context) (accesstoken.SigningKey, error) {
	keys, err := k.snapshot(ctx, false)
	if err != nil {
		return accesstoken.SigningKey{}, err
	}
	now := k.now()
	for i := len(keys) - 1; i >= 0; i-- {
		if !keys[i].activeFrom.After(now) {
			return accesstoken.SigningKey{KID: keys[i].kid, Private: keys[i].private}, nil
		}
	}
	return accesstoken.SigningKey{}, errNoSigningKey
}

// published returns the keys the JWKS lists now: every key not yet
// replaced (including keys waiting to become active), and replaced keys
// until keepAfterRetire after their successor became active.
func published(keys []signingKey, now time.Time, keep time.Duration) []signingKey {
	var out []signingKey
	for i, sk := range keys {
		if i+1 < len(keys) && now.Sub(keys[i+1].activeFrom) > keep {
			continue
		}
		out = append(out, sk)
	}
	return out
}

// JWKS returns the public key set.
func (k *keyring) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	keys, err := k.snapshot(ctx, false)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, sk := range published(keys, k.now(), k.keepAfterRetire()) {
		set.Keys = append(set.Keys, accesstoken.PublicJWK(sk.kid, sk.public))
	}
	return set, nil
}

// VerifySignature implements oidc.KeySet from the key table, so the global
// layer verifies its own tokens without an HTTP round trip. An unknown kid
// reloads the table (at most once a second) before failing.
func (k *keyring) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jwt must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	for _, force := range []bool{false, true} {
		keys, err := k.snapshot(ctx, force)
		if err != nil {
			return nil, err
		}
		for _, sk := range published(keys, k.now(), k.keepAfterRetire()) {
			if sk.kid == kid {
				return jws.Verify(sk.public)
			}
		}
	}
	return nil, fmt.Errorf("unknown signing key %q", kid)
}

// thumbprint is the RFC 7638 JWK thumbprint, the key's kid.
func thumbprint(pub ed25519.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
