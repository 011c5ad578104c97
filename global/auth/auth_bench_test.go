package auth_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

var quiet = slog.New(slog.DiscardHandler)

// rate runs f n times and returns operations per second.
func rate(b *testing.B, n int, f func(i int) error) float64 {
	b.Helper()
	start := time.Now()
	for i := range n {
		if err := f(i); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkLogin measures a whole login (ID-token verification with
// go-oidc, player upsert + refresh family in one SERIALIZABLE transaction,
// EdDSA signing) against PostgreSQL, next to two baselines measured in the
// same run on the same pool: a bare `SELECT 1` round trip and a bare
// autocommit INSERT. The ratios say how many such round trips a login
// costs, which is what stays comparable across machines.
func BenchmarkLogin(b *testing.B) {
	ctx := context.Background()
	db := testenv.NewDatabase(b)
	idp := testoidc.NewOIDCProvider(b)
	cfg := baseConfig(idp)
	cfg.AllowDeviceLogin = true
	a, err := auth.New(cfg, auth.Deps{DB: db.Pool, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE bench_insert (id UUID PRIMARY KEY, v INT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	idToken := idp.IDToken(b, "bench_user")
	if _, err := a.LoginOIDC(ctx, idToken); err != nil { // player exists; keys fetched
		b.Fatal(err)
	}
	baselines := func(b *testing.B, loginsPerSec float64) {
		n := max(b.N, 200)
		sel := rate(b, n, func(int) error {
			var one int
			return db.Pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
		})
		ins := rate(b, n, func(i int) error {
			_, err := db.Pool.Exec(ctx, `INSERT INTO bench_insert (id, v) VALUES ($1, $2)`, uuid.New(), i)
			return err
		})
		b.ReportMetric(loginsPerSec, "logins/s")
		b.ReportMetric(sel, "select1/s")
		b.ReportMetric(ins, "inserts/s")
		b.ReportMetric(sel/loginsPerSec, "select1_per_login")
		b.ReportMetric(ins/loginsPerSec, "inserts_per_login")
	}

	b.Run("oidc_existing_player", func(b *testing.B) {
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if _, err := a.LoginOIDC(ctx, idToken); err != nil {
				b.Fatal(err)
			}
		}
		perSec := float64(b.N) / time.Since(start).Seconds()
		b.StopTimer()
		baselines(b, perSec)
	})
	b.Run("device_new_player", func(b *testing.B) {
		prefix := fmt.Sprintf("bench-device-%d-", b.N)
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if _, err := a.LoginDevice(ctx, fmt.Sprintf("%s%08d", prefix, i)); err != nil {
				b.Fatal(err)
			}
		}
		perSec := float64(b.N) / time.Since(start).Seconds()
		b.StopTimer()
		baselines(b, perSec)
	})
}

// BenchmarkVerifyAccessToken measures what a cell pays per request:
// accesstoken.Verifier (go-oidc over a cached remote JWKS: parse, alg
// check, kid lookup, Ed25519, claims) next to a bare ed25519.Verify of the
// same signature in the same run.
func BenchmarkVerifyAccessToken(b *testing.B) {
	ctx := context.Background()
	db := testenv.NewDatabase(b)
	cfg := baseConfig()
	cfg.AllowDeviceLogin = true
	g := startGlobal(b, cfg, auth.Deps{DB: db.Pool, Log: quiet})
	tok, err := g.Auth.LoginDevice(ctx, "bench-verify-device-1")
	if err != nil {
		b.Fatal(err)
	}
	v := accesstoken.NewRemoteVerifier(ctx, g.Auth.Issuer(), g.JWKSURL())
	if _, err := v.Verify(ctx, tok.AccessToken); err != nil { // fetches and caches the JWKS
		b.Fatal(err)
	}
	var set jose.JSONWebKeySet
	call(b, "GET", g.JWKSURL(), "", nil, &set)
	pub, _ := set.Keys[0].Key.(ed25519.PublicKey)
	parts := strings.Split(tok.AccessToken, ".")
	input := []byte(parts[0] + "." + parts[1])
	sig := mustB64(b, parts[2])
	if pub == nil || !ed25519.Verify(pub, input, sig) {
		b.Fatal("raw ed25519 check of the token failed")
	}

	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := v.Verify(ctx, tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
	perSec := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	raw := rate(b, max(b.N, 1000), func(int) error {
		if !ed25519.Verify(pub, input, sig) {
			return fmt.Errorf("verify failed")
		}
		return nil
	})
	b.ReportMetric(perSec, "verifies/s")
	b.ReportMetric(raw, "raw_ed25519/s")
	b.ReportMetric(raw/perSec, "raw_ed25519_per_verify")
}
