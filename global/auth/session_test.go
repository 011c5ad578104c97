package auth_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
)

func TestRefreshReuseRevokesFamily(t *testing.T) {
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	g := startGlobal(t, baseConfig(idp), auth.Deps{DB: db.Pool})
	id := idp.IDToken(t, "carol")
	s1 := g.mustLoginOIDC(t, id)
	s2 := g.mustLoginOIDC(t, id) // a second device: its own family

	code, r2 := g.refresh(t, s1.RefreshToken)
	if code != 200 {
		t.Fatalf("refresh: %d", code)
	}
	// The stolen (already rotated) token comes back: refused, family revoked.
	if code, tr := g.refresh(t, s1.RefreshToken); code != 401 || tr.Error.Code != "refresh_token_reused" {
		t.Fatalf("reuse: %d %+v", code, tr)
	}
	// …so the legitimate holder's current token is dead too.
	if code, tr := g.refresh(t, r2.RefreshToken); code != 401 || tr.Error.Code != "invalid_refresh_token" {
		t.Fatalf("current token after reuse: %d %+v", code, tr)
	}
	if n := count(t, db, `SELECT count(*) FROM refresh_token_families WHERE revoke_reason = 'reuse' AND player_id = $1`, s1.PlayerID); n != 1 {
		t.Fatalf("families revoked for reuse = %d", n)
	}
	// The other family still works.
	if code, _ := g.refresh(t, s2.RefreshToken); code != 200 {
		t.Fatalf("other family: %d", code)
	}
	// Logout with only the bearer token revokes the family it was issued under.
	s3 := g.mustLoginOIDC(t, id)
	if code := call(t, "POST", g.Srv.URL+"/auth/logout", s3.AccessToken, nil, nil); code != 204 {
		t.Fatalf("logout by fam claim: %d", code)
	}
	if code, _ := g.refresh(t, s3.RefreshToken); code != 401 {
		t.Fatalf("refresh after bearer-only logout: %d", code)
	}
	if got := metricValue(t, g, "cellgrid_auth_refreshes_total", "result", "reused"); got != 1 {
		t.Errorf("refreshes_total{reused} = %v", got)
	}
}

// Racing refreshes with one token: exactly one wins; every other one is
// told the token was reused, and the reuse revokes the whole family, the
// winner's fresh token included.
func TestConcurrentRefreshSameToken(t *testing.T) {
	db := testenv.NewDatabase(t)
	cfg := baseConfig()
	cfg.AllowDeviceLogin = true
	g := startGlobal(t, cfg, auth.Deps{DB: db.Pool})
	_, s := g.login(t, map[string]string{"provider": "device", "device_id": "racing-device-0001"})
	_, other := g.login(t, map[string]string{"provider": "device", "device_id": "racing-device-0001"}) // a second family
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		winner []tokenResp
		codes  = map[string]int{}
	)
	const racers = 8
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, tr := g.refresh(t, s.RefreshToken)
			mu.Lock()
			defer mu.Unlock()
			if code == 200 {
				winner = append(winner, tr)
			} else {
				codes[fmt.Sprint(code, " ", tr.Error.Code)]++
			}
		}()
	}
	wg.Wait()
	if len(winner) != 1 || codes["401 refresh_token_reused"] != racers-1 {
		t.Fatalf("%d winners, refusals %v; want 1 winner and %d × 401 refresh_token_reused", len(winner), codes, racers-1)
	}
	// The winner's new refresh token belongs to the revoked family.
	if code, tr := g.refresh(t, winner[0].RefreshToken); code != 401 || tr.Error.Code != "invalid_refresh_token" {
		t.Fatalf("winner's new token after the reuse: %d %+v", code, tr)
	}
	if n := count(t, db, `SELECT count(*) FROM refresh_token_families WHERE player_id = $1 AND revoked_at IS NOT NULL AND revoke_reason = 'reuse'`, s.PlayerID); n != 1 {
		t.Fatalf("families revoked for reuse = %d, want 1", n)
	}
	if n := count(t, db, `SELECT count(*) FROM refresh_token_families WHERE player_id = $1 AND revoked_at IS NULL`, s.PlayerID); n != 1 {
		t.Fatalf("%d live families, want 1 (the other login)", n)
	}
	if code, _ := g.refresh(t, other.RefreshToken); code != 200 {
		t.Fatalf("the other family: %d", code)
	}
	if got := metricValue(t, g, "cellgrid_auth_refreshes_total", "result", "reused"); got != racers-1 {
		t.Errorf("refreshes_total{reused} = %v, want %d", got, racers-1)
	}
}

// A token signed before a restart (a new auth.New on the same database)
// verifies after it, through the new instance's JWKS, and the old refresh
// token still works. The wrong encryption key refuses to start.
func TestTokensSurviveRestart(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	g1 := startGlobal(t, baseConfig(idp), auth.Deps{DB: db.Pool})
	s := g1.mustLoginOIDC(t, idp.IDToken(t, "dave"))
	g1.Srv.Close()

	g2 := startGlobal(t, baseConfig(idp), auth.Deps{DB: db.Pool})
	cell := startCell(t, accesstoken.NewRemoteVerifier(ctx, testIssuer, g2.JWKSURL()))
	if code, c := whoami(t, cell, s.AccessToken); code != 200 || c.PlayerID != s.PlayerID {
		t.Fatalf("pre-restart token after restart: %d %+v", code, c)
	}
	if _, err := g2.Auth.Verifier().Verify(ctx, s.AccessToken); err != nil {
		t.Fatalf("in-process verifier: %v", err)
	}
	code, r := g2.refresh(t, s.RefreshToken)
	if code != 200 || kidOf(t, r.AccessToken) != kidOf(t, s.AccessToken) {
		t.Fatalf("refresh after restart: %d, kid %s vs %s", code, kidOf(t, r.AccessToken), kidOf(t, s.AccessToken))
	}
	if n := count(t, db, `SELECT count(*) FROM signing_keys`); n != 1 {
		t.Fatalf("restart created keys: %d", n)
	}

	cfg := baseConfig(idp)
	cfg.EncryptionKey = make([]byte, 32)
	if _, err := auth.New(cfg, auth.Deps{DB: db.Pool}); err == nil {
		t.Fatal("auth.New with another encryption key succeeded")
	}
}

// Instances starting together on an empty key table end with one key.
func TestConcurrentFirstStart(t *testing.T) {
	db := testenv.NewDatabase(t)
	const n = 8
	kids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := auth.New(baseConfig(), auth.Deps{DB: db.Pool})
			if err != nil {
				t.Error(err)
				return
			}
			set, err := a.JWKS(t.Context())
			if err != nil || len(set.Keys) != 1 {
				t.Errorf("jwks: %v %v", set, err)
				return
			}
			kids[i] = set.Keys[0].KeyID
		}()
	}
	wg.Wait()
	if c := count(t, db, `SELECT count(*) FROM signing_keys`); c != 1 {
		t.Fatalf("%d signing keys after concurrent first start", c)
	}
	for _, k := range kids {
		if k != kids[0] {
			t.Fatalf("instances publish different keys: %v", kids)
		}
	}
}

// Rotate publishes the new key first, switches signing to it after
// KeyPublishAhead on every instance, and keeps the old key published until
// the old tokens have expired.
func TestRotationKeepsOldTokensValid(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDatabase(t)
	clk := newClock()
	cfg := baseConfig()
	cfg.AllowDeviceLogin = true
	g1 := startGlobal(t, cfg, auth.Deps{DB: db.Pool, Now: clk.Now})
	g2 := startGlobal(t, cfg, auth.Deps{DB: db.Pool, Now: clk.Now}) // a second instance
	dev := func(g *global) tokenResp {
		code, tr := g.login(t, map[string]string{"provider": "device", "device_id": "rotation-device-001"})
		if code != 200 {
			t.Fatalf("login: %d %+v", code, tr)
		}
		return tr
	}
	verify := func(g *global, tok string) error { // a cell with a fresh JWKS cache
		_, err := accesstoken.NewVerifier(testIssuer, oidc.NewRemoteKeySet(ctx, g.JWKSURL()), clk.Now).Verify(ctx, tok)
		return err
	}
	old := dev(g1)
	k1 := kidOf(t, old.AccessToken)

	if err := g1.Auth.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	kids := jwksKids(t, g1)
	if len(kids) != 2 || !slices.Contains(kids, k1) {
		t.Fatalf("after rotate jwks %v", kids)
	}
	k2 := kids[0]
	if k2 == k1 {
		k2 = kids[1]
	}
	if k := kidOf(t, dev(g1).AccessToken); k != k1 {
		t.Fatalf("signed with the new key before it was published everywhere: %s", k)
	}

	clk.Advance(auth.DefaultKeyRefresh*2 + time.Second) // past KeyPublishAhead and KeyRefresh
	for _, g := range []*global{g1, g2} {
		tok := dev(g).AccessToken
		if k := kidOf(t, tok); k != k2 {
			t.Fatalf("instance still signs with %s, want %s", k, k2)
		}
		if err := verify(g, tok); err != nil {
			t.Fatalf("new token: %v", err)
		}
		if err := verify(g, old.AccessToken); err != nil {
			t.Fatalf("token signed before the rotation: %v", err)
		}
	}
	// The old key leaves the JWKS once its tokens have expired.
	clk.Advance(auth.DefaultAccessTTL + auth.DefaultKeyRefresh + time.Minute + time.Second)
	for _, g := range []*global{g1, g2} {
		if kids := jwksKids(t, g); len(kids) != 1 || kids[0] != k2 {
			t.Fatalf("jwks after old tokens expired: %v", kids)
		}
	}
	// g1 made the first key and the rotation (the registry is per instance).
	if got := metricValue(t, g1, "cellgrid_auth_signing_key_rotations_total", "", ""); got != 2 {
		t.Errorf("rotations counted by g1 = %v, want 2", got)
	}
}

// Keys past KeyLifetime are replaced without anyone calling Rotate, once,
// even with two instances.
func TestAutomaticRotation(t *testing.T) {
	db := testenv.NewDatabase(t)
	clk := newClock()
	cfg := baseConfig()
	cfg.AllowDeviceLogin = true
	cfg.KeyLifetime = time.Hour
	g1 := startGlobal(t, cfg, auth.Deps{DB: db.Pool, Now: clk.Now})
	g2 := startGlobal(t, cfg, auth.Deps{DB: db.Pool, Now: clk.Now})
	sign := func(g *global) string {
		code, tr := g.login(t, map[string]string{"provider": "device", "device_id": "auto-rotation-dev-1"})
		if code != 200 {
			t.Fatalf("login %d", code)
		}
		return kidOf(t, tr.AccessToken)
	}
	k1 := sign(g1)
	clk.Advance(time.Hour + time.Second)
	var wg sync.WaitGroup
	for _, g := range []*global{g1, g2, g1, g2} {
		wg.Add(1)
		go func() { defer wg.Done(); sign(g) }()
	}
	wg.Wait()
	if n := count(t, db, `SELECT count(*) FROM signing_keys`); n != 2 {
		t.Fatalf("signing keys after lifetime = %d, want 2", n)
	}
	clk.Advance(2*auth.DefaultKeyRefresh + time.Second)
	if k := sign(g1); k == k1 || k != sign(g2) {
		t.Fatalf("after publish-ahead: g1 %s g2 %s (old %s)", k, sign(g2), k1)
	}
}

// 200 simultaneous first logins of one identity make exactly one player,
// one identity and one starting grant (OnNewPlayer runs in the creating
// transaction), and every login succeeds with that player.
func TestParallelFirstLoginsOnePlayer(t *testing.T) {
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	onNew := func(ctx context.Context, tx pgx.Tx, playerID uuid.UUID) error {
		_, err := tx.Exec(ctx, `INSERT INTO wallet_balances (player_id, currency, balance) VALUES ($1, 'gold', 100)`, playerID)
		return err
	}
	cfg := baseConfig(idp)
	cfg.RateLimits.Disabled = true // 200 logins of one identity at once: the database's concurrency is under test
	g := startGlobal(t, cfg, auth.Deps{DB: db.Pool, OnNewPlayer: onNew})
	id := idp.IDToken(t, "erin")
	const n = 200
	ids := make([]string, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var tr tokenResp
			codes[i] = call(t, "POST", g.Srv.URL+"/auth/login", "", map[string]string{"provider": "oidc", "id_token": id}, &tr)
			ids[i] = tr.PlayerID
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if codes[i] != 200 || ids[i] != ids[0] {
			t.Fatalf("login %d: %d player %s (first %s)", i, codes[i], ids[i], ids[0])
		}
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM players`:                                    1,
		`SELECT count(*) FROM auth_identities`:                            1,
		`SELECT count(*) FROM wallet_balances`:                            1,
		`SELECT count(*) FROM refresh_token_families`:                     n,
		`SELECT count(DISTINCT current_hash) FROM refresh_token_families`: n,
	} {
		if got := count(t, db, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}
