package profile_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/global/profile"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
	"github.com/google/uuid"
)

var testKey = bytes.Repeat([]byte{7}, 32)

type env struct {
	db  *testenv.Database
	idp *testoidc.OIDCProvider
	srv *httptest.Server
}

type session struct {
	PlayerID     string `json:"player_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// newEnv wires auth and profile on one mux, as the global layer does.
func newEnv(t *testing.T) *env {
	t.Helper()
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	a, err := auth.New(auth.Config{
		Issuer:        "https://global.cellgrid.test",
		EncryptionKey: testKey,
		OIDCIssuers:   []auth.OIDCIssuer{{Issuer: idp.Issuer, ClientID: idp.ClientID}},
	}, auth.Deps{DB: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.New(profile.Config{EncryptionKey: testKey}, profile.Deps{DB: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux, a.Verifier().Middleware)
	p.Register(mux, a.Verifier().Middleware)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{db: db, idp: idp, srv: srv}
}

func (e *env) login(t *testing.T, user string) session {
	t.Helper()
	var s session
	if code, body := e.do(t, "POST", "/auth/login", "", `{"provider":"oidc","id_token":"`+e.idp.IDToken(t, user)+`"}`, &s); code != 200 {
		t.Fatalf("login %s: %d %s", user, code, body)
	}
	return s
}

// do sends a request and decodes the JSON answer into out (if not nil).
func (e *env) do(t *testing.T, method, path, bearer, body string, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

func errCode(body string) string {
	var env struct{ Error struct{ Code string } }
	_ = json.Unmarshal([]byte(body), &env)
	return env.Error.Code
}

func TestPublicProfile(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.login(t, "alice"), e.login(t, "bob")

	var pub map[string]any
	code, body := e.do(t, "GET", "/player/"+alice.PlayerID+"/profile", bob.AccessToken, "", &pub)
	if code != 200 || pub["username"] != "alice" || pub["level"] != 1.0 || pub["xp"] != 0.0 ||
		pub["created_at"] == nil || pub["last_login_at"] == nil || pub["player_id"] != alice.PlayerID {
		t.Fatalf("profile: %d %s", code, body)
	}
	if strings.Contains(body, "@") || strings.Contains(body, "email") {
		t.Fatalf("public profile leaks the email: %s", body)
	}
	if code, _ := e.do(t, "GET", "/player/me/profile", alice.AccessToken, "", &pub); code != 200 || pub["player_id"] != alice.PlayerID {
		t.Fatalf("me/profile: %d %v", code, pub)
	}
	if code, _ := e.do(t, "GET", "/player/"+alice.PlayerID+"/profile", "", "", nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := e.do(t, "GET", "/player/"+alice.PlayerID+"/profile", "not-a-token", "", nil); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	for _, id := range []string{uuid.NewString(), "nope"} {
		if code, body := e.do(t, "GET", "/player/"+id+"/profile", bob.AccessToken, "", nil); code != 404 || errCode(body) != "not_found" {
			t.Fatalf("unknown player %s: %d %s", id, code, body)
		}
	}
}

func TestPatchUsername(t *testing.T) {
	e := newEnv(t)
	alice, _ := e.login(t, "alice"), e.login(t, "bob")
	cases := []struct {
		body   string
		status int
		code   string
	}{
		{`{"username":"ab"}`, 400, "invalid_username"},
		{`{"username":"abcdefghij0123456789x"}`, 400, "invalid_username"},
		{`{"username":"bad-name"}`, 400, "invalid_username"},
		{`{"username":"ünï"}`, 400, "invalid_username"},
		{`{"username":"ok_name","email":"x@y"}`, 400, "invalid_json"},
		{`{}`, 400, "invalid_request"},
		{`{"username":"` + strings.Repeat("a", 5000) + `"}`, 413, "body_too_large"},
		{`{"username":"bob"}`, 409, "username_taken"},
		{`{"username":"BOB"}`, 409, "username_taken"}, // unique regardless of case
		{`{"username":"Alice_2"}`, 200, ""},
		{`{"username":"alice_2"}`, 200, ""}, // own name, another case
	}
	for _, c := range cases {
		code, body := e.do(t, "PATCH", "/player/me", alice.AccessToken, c.body, nil)
		if code != c.status || errCode(body) != c.code {
			t.Errorf("%.40s: %d %s, want %d %s", c.body, code, body, c.status, c.code)
		}
	}
	var pub map[string]any
	e.do(t, "GET", "/player/me/profile", alice.AccessToken, "", &pub)
	if pub["username"] != "alice_2" {
		t.Fatalf("username after patch: %v", pub["username"])
	}
	if code, _ := e.do(t, "PATCH", "/player/me", "", `{"username":"zzz"}`, nil); code != 401 {
		t.Fatalf("patch without token: %d", code)
	}
}

// Two players racing for one name: one gets it, the other 409.
func TestPatchUsernameRace(t *testing.T) {
	e := newEnv(t)
	players := []session{e.login(t, "p1"), e.login(t, "p2"), e.login(t, "p3"), e.login(t, "p4")}
	codes := make([]int, len(players))
	var wg sync.WaitGroup
	for i, p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = e.do(t, "PATCH", "/player/me", p.AccessToken, `{"username":"Champion"}`, nil)
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case 200:
			won++
		case 409:
		default:
			t.Fatalf("codes %v", codes)
		}
	}
	if won != 1 {
		t.Fatalf("codes %v: %d winners", codes, won)
	}
}

// seed writes one row in every player table, as the economy, sessions,
// leaderboards and telemetry would.
func seed(t *testing.T, e *env, player string) {
	t.Helper()
	ctx := context.Background()
	sess := uuid.New()
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO item_templates (id, name) VALUES ('sword', 'Sword') ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO wallet_balances (player_id, currency, balance) VALUES ($1, 'gold', 150)`,
		`INSERT INTO inventory_items (player_id, item_template_id, quantity) VALUES ($1, 'sword', 1)`,
		`INSERT INTO transactions (player_id, kind, currency, amount, idempotency_key) VALUES ($1, 'grant', 'gold', 150, 'k1')`,
		`INSERT INTO leaderboard_records (leaderboard_id, player_id, score) VALUES ('global', $1, 42)`,
		`INSERT INTO game_event_log (id, player_id, event_type, occurred_at, payload) VALUES (gen_random_uuid(), $1, 'kill', now(), '{"weapon":"sword"}')`,
		`INSERT INTO player_storage (player_id, storage_key, value, version) VALUES ($1, 'notes', '\x6d79206e6f746573', 1)`,
		`INSERT INTO telemetry_dead_letter (id, player_id, event_type, reason, raw) VALUES (gen_random_uuid(), $1, 'chat', 'nul byte', '\x7b226d7367223a2268692074686572655c7530303030227d')`,
	} {
		if _, err := e.db.Pool.Exec(ctx, q, player); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO game_sessions (id, game_mode, region, status) VALUES ($1, 'duel', 'eu-west-1', 'ended')`, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO game_session_players (session_id, player_id, score) VALUES ($1, $2, 7)`, sess, player); err != nil {
		t.Fatal(err)
	}
}

func TestExportAndErase(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	alice, bob := e.login(t, "alice"), e.login(t, "bob")
	seed(t, e, alice.PlayerID)
	seed(t, e, bob.PlayerID)
	// A table a later migration might add: exported without code changes.
	if _, err := e.db.Pool.Exec(ctx, `CREATE TABLE pets (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), player_id UUID NOT NULL, name TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO pets (player_id, name) VALUES ($1, 'Rex'), ($2, 'Fido')`, alice.PlayerID, bob.PlayerID); err != nil {
		t.Fatal(err)
	}

	var ex profile.Export
	code, body := e.do(t, "GET", "/player/me/export", alice.AccessToken, "", &ex)
	if code != 200 {
		t.Fatalf("export: %d %s", code, body)
	}
	if ex.Player.Email == nil || *ex.Player.Email != e.idp.User("alice").Email || ex.Player.Username == nil || *ex.Player.Username != "alice" {
		t.Fatalf("exported player: %+v", ex.Player)
	}
	for name, rows := range map[string][]map[string]any{
		"identities": ex.Identities, "refresh_token_families": ex.RefreshTokenFamilies,
		"wallet_balances": ex.WalletBalances, "inventory_items": ex.InventoryItems,
		"transactions": ex.Transactions, "game_sessions": ex.GameSessions,
		"leaderboard_records": ex.LeaderboardRecords, "game_event_log": ex.GameEvents,
		"player_storage": ex.PlayerStorage, "telemetry_dead_letter": ex.TelemetryDeadLetters,
	} {
		if len(rows) != 1 {
			t.Errorf("export %s: %d rows, want 1: %v", name, len(rows), rows)
		}
	}
	if ex.Identities[0]["subject"] != e.idp.User("alice").ID || ex.Transactions[0]["player_id"] != alice.PlayerID {
		t.Errorf("export rows: %v %v", ex.Identities, ex.Transactions)
	}
	if ev := ex.GameEvents[0]["payload"]; ev.(map[string]any)["weapon"] != "sword" {
		t.Errorf("event payload %v", ev)
	}
	if v := ex.PlayerStorage[0]["value"]; ex.PlayerStorage[0]["storage_key"] != "notes" || v != base64.StdEncoding.EncodeToString([]byte("my notes")) {
		t.Errorf("exported storage %v", ex.PlayerStorage[0])
	}
	if ex.TelemetryDeadLetters[0]["reason"] != "nul byte" || ex.TelemetryDeadLetters[0]["raw"] == "" {
		t.Errorf("exported dead letter %v", ex.TelemetryDeadLetters[0])
	}
	if strings.Contains(body, "current_hash") || strings.Contains(body, "token_hash") || strings.Contains(body, bob.PlayerID) {
		t.Fatalf("export leaks secrets or another player's data")
	}
	if pets := ex.OtherTables["pets"]; len(pets) != 1 || pets[0]["name"] != "Rex" || pets[0]["player_id"] != alice.PlayerID {
		t.Errorf("other_tables[pets] = %v", pets)
	}

	// Erase.
	if code, body := e.do(t, "DELETE", "/player/me", alice.AccessToken, "", nil); code != 204 {
		t.Fatalf("erase: %d %s", code, body)
	}
	var (
		username *string
		emailEnc []byte
		erased   bool
	)
	if err := e.db.Pool.QueryRow(ctx, `SELECT username, email_enc, erased_at IS NOT NULL FROM players WHERE id = $1`, alice.PlayerID).Scan(&username, &emailEnc, &erased); err != nil {
		t.Fatal(err)
	}
	if username != nil || emailEnc != nil || !erased {
		t.Fatalf("after erase: username %v email %x erased %v", username, emailEnc, erased)
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM auth_identities WHERE player_id = $1`:                        0,
		`SELECT count(*) FROM refresh_token_families WHERE player_id = $1`:                 0,
		`SELECT count(*) FROM transactions WHERE player_id = $1`:                           1, // ledger kept, anonymous
		`SELECT count(*) FROM wallet_balances WHERE player_id = $1`:                        1,
		`SELECT count(*) FROM player_storage WHERE player_id = $1`:                         0, // written by the player
		`SELECT count(*) FROM telemetry_dead_letter WHERE player_id = $1`:                  0,
		`SELECT count(*) FROM game_event_log WHERE player_id = $1`:                         1, // kept for the anomaly rules …
		`SELECT count(*) FROM game_event_log WHERE player_id = $1 AND payload IS NOT NULL`: 0, // … without its payload
	} {
		var n int
		if err := e.db.Pool.QueryRow(ctx, q, alice.PlayerID).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d (%v), want %d", q, n, err, want)
		}
	}
	var tokens int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens`).Scan(&tokens); err != nil || tokens != 1 {
		t.Errorf("refresh tokens left = %d (only bob's should remain)", tokens)
	}
	// Bob is untouched.
	for _, q := range []string{
		`SELECT count(*) FROM player_storage WHERE player_id = $1`,
		`SELECT count(*) FROM telemetry_dead_letter WHERE player_id = $1`,
		`SELECT count(*) FROM game_event_log WHERE player_id = $1 AND payload IS NOT NULL`,
	} {
		var n int
		if err := e.db.Pool.QueryRow(ctx, q, bob.PlayerID).Scan(&n); err != nil || n != 1 {
			t.Errorf("bob: %s = %d (%v), want 1", q, n, err)
		}
	}
	var pub map[string]any
	if code, _ := e.do(t, "GET", "/player/"+bob.PlayerID+"/profile", bob.AccessToken, "", &pub); code != 200 || pub["username"] != "bob" {
		t.Fatalf("bob after alice's erasure: %d %v", code, pub)
	}
	// No way back in through the old session; the profile is gone.
	if code, _ := e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+alice.RefreshToken+`"}`, nil); code != 401 {
		t.Fatalf("refresh after erase: %d", code)
	}
	if code, _ := e.do(t, "GET", "/player/"+alice.PlayerID+"/profile", bob.AccessToken, "", nil); code != 404 {
		t.Fatalf("erased profile: %d", code)
	}
	if code, _ := e.do(t, "PATCH", "/player/me", alice.AccessToken, `{"username":"ghost"}`, nil); code != 404 {
		t.Fatalf("patch after erase: %d", code)
	}
	// The export now holds no PII; erasing twice is fine.
	code, body = e.do(t, "GET", "/player/me/export", alice.AccessToken, "", &ex)
	if code != 200 || ex.Player.Email != nil || ex.Player.Username != nil || ex.Player.ErasedAt == nil || strings.Contains(body, "alice") {
		t.Fatalf("export after erase: %d %s", code, body)
	}
	if code, _ := e.do(t, "DELETE", "/player/me", alice.AccessToken, "", nil); code != 204 {
		t.Fatalf("second erase: %d", code)
	}
	// Logging in again with the same identity makes a new, unrelated player.
	again := e.login(t, "alice")
	if again.PlayerID == alice.PlayerID {
		t.Fatal("erased player came back")
	}
}
