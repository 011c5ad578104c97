package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
)

// Every kind of bad ID token is refused with 401 invalid_id_token and
// creates nothing; the same minting path with nothing wrong is accepted
// (so each refusal is for its stated reason, not for how the test signs).
func TestLoginRefusesBadIDTokens(t *testing.T) {
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	other := testoidc.NewOIDCProvider(t) // a second configured issuer
	stranger := testoidc.NewOIDCProvider(t)
	g := startGlobal(t, baseConfig(idp, other), auth.Deps{DB: db.Pool})

	reasons := map[testoidc.Forgery]string{
		testoidc.ForgeExpired:        "token is expired",
		testoidc.ForgeWrongAudience:  "expected audience",
		testoidc.ForgeWrongIssuer:    "not configured",
		testoidc.ForgeAlgNone:        "unexpected signature algorithm",
		testoidc.ForgeHS256PublicKey: "unexpected signature algorithm",
		testoidc.ForgeUnknownKID:     "failed to verify",
		testoidc.ForgeForeignKey:     "failed to verify",
		testoidc.ForgeTampered:       "failed to verify",
	}
	for _, f := range testoidc.Forgeries {
		t.Run(f.String(), func(t *testing.T) {
			code, tr := g.login(t, map[string]string{"provider": "oidc", "id_token": idp.ForgedIDToken(t, "mallory", f)})
			if code != 401 || tr.Error.Code != "invalid_id_token" || tr.AccessToken != "" {
				t.Fatalf("%s: %d %+v, want 401 invalid_id_token", f, code, tr)
			}
			// And for the right reason.
			_, err := g.Auth.LoginOIDC(t.Context(), idp.ForgedIDToken(t, "mallory", f))
			if !errors.Is(err, auth.ErrInvalidIDToken) || !strings.Contains(err.Error(), reasons[f]) {
				t.Fatalf("%s: error %v, want one mentioning %q", f, err, reasons[f])
			}
		})
	}
	if n := count(t, db, `SELECT count(*) FROM players`); n != 0 {
		t.Fatalf("refused tokens created %d players", n)
	}

	t.Run("issuer_confusion", func(t *testing.T) {
		// Signed by idp's key, claiming to come from the other configured
		// issuer (right audience for it): checked against other's keys.
		c := idp.Claims("mallory")
		c["iss"], c["aud"], c["azp"] = other.Issuer, []string{other.ClientID}, other.ClientID
		if code, tr := g.login(t, map[string]string{"provider": "oidc", "id_token": idp.SignClaims(t, c)}); code != 401 {
			t.Fatalf("cross-issuer token: %d %+v", code, tr)
		}
		// A real token from a provider nobody configured.
		if code, _ := g.login(t, map[string]string{"provider": "oidc", "id_token": stranger.IDToken(t, "eve")}); code != 401 {
			t.Fatalf("unconfigured issuer: %d", code)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, tok := range []string{"x", "a.b.c", strings.Repeat("A", 2000)} {
			if code, _ := g.login(t, map[string]string{"provider": "oidc", "id_token": tok}); code != 401 {
				t.Errorf("%q: %d", tok[:1], code)
			}
		}
	})

	t.Run("control", func(t *testing.T) {
		g.mustLoginOIDC(t, idp.ForgedIDToken(t, "mallory", testoidc.ForgeNone))
		g.mustLoginOIDC(t, other.IDToken(t, "olivia")) // several issuers
	})
	if n := count(t, db, `SELECT count(*) FROM players`); n != 2 {
		t.Fatalf("players = %d, want 2", n)
	}
}

func TestLoginRequestValidation(t *testing.T) {
	db := testenv.NewDatabase(t)
	g := startGlobal(t, baseConfig(), auth.Deps{DB: db.Pool})
	cases := []struct {
		body   string
		status int
		code   string
	}{
		{`{"provider":"oidc","id_token":"x","extra":1}`, 400, "invalid_json"},
		{`{"provider":"oidc"}`, 400, "invalid_request"},
		{`{"provider":"oidc","id_token":"x","device_id":"y"}`, 400, "invalid_request"},
		{`{"provider":"saml","id_token":"x"}`, 400, "unknown_provider"},
		{`{"provider":"oidc","id_token":"` + strings.Repeat("a", 20<<10) + `"}`, 413, "body_too_large"},
		{`not json`, 400, "invalid_json"},
		{`{"provider":"device","device_id":"0123456789abcdef"}`, 403, "device_login_disabled"},
	}
	for _, c := range cases {
		var tr tokenResp
		status := call(t, "POST", g.Srv.URL+"/auth/login", "", c.body, &tr)
		if status != c.status || tr.Error.Code != c.code || tr.Error.Message == "" {
			t.Errorf("%.60s: %d %q, want %d %q", c.body, status, tr.Error.Code, c.status, c.code)
		}
	}
	var tr tokenResp
	if status := call(t, "POST", g.Srv.URL+"/auth/refresh", "", `{"refresh_token":"cgrt_nope"}`, &tr); status != 401 || tr.Error.Code != "invalid_refresh_token" {
		t.Errorf("unknown refresh token: %d %+v", status, tr)
	}
	if status := call(t, "POST", g.Srv.URL+"/auth/refresh", "", `{"token":"x"}`, &tr); status != 400 {
		t.Errorf("refresh unknown field: %d", status)
	}
}

func TestDeviceLogin(t *testing.T) {
	db := testenv.NewDatabase(t)
	cfg := baseConfig()
	cfg.AllowDeviceLogin = true
	g := startGlobal(t, cfg, auth.Deps{DB: db.Pool})
	dev := func(id string) (int, tokenResp) {
		return g.login(t, map[string]string{"provider": "device", "device_id": id})
	}
	for _, bad := range []string{"short", "has spaces in it here", strings.Repeat("a", 129), "ünïcode-device-id-1234"} {
		if code, tr := dev(bad); code != 400 || tr.Error.Code != "invalid_device_id" {
			t.Errorf("device id %q: %d %+v", bad, code, tr)
		}
	}
	code, a1 := dev("device-0001-aaaa-bbbb")
	if code != 200 {
		t.Fatalf("device login: %d %+v", code, a1)
	}
	_, a2 := dev("device-0001-aaaa-bbbb")
	_, b := dev("device-0002-aaaa-bbbb")
	if a1.PlayerID != a2.PlayerID || a1.PlayerID == b.PlayerID {
		t.Fatalf("device players: %s %s %s", a1.PlayerID, a2.PlayerID, b.PlayerID)
	}
	if n := count(t, db, `SELECT count(*) FROM auth_identities WHERE issuer = 'device' AND provider = 'device'`); n != 2 {
		t.Fatalf("device identities = %d", n)
	}
	// Guests get distinct valid names and no email.
	rows, err := db.Pool.Query(t.Context(), `SELECT username, email_enc IS NULL FROM players`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var name string
		var noEmail bool
		if err := rows.Scan(&name, &noEmail); err != nil {
			t.Fatal(err)
		}
		if !auth.ValidUsername(name) || seen[name] || !noEmail {
			t.Errorf("guest username %q (dup %v) email? %v", name, seen[name], !noEmail)
		}
		seen[name] = true
	}
	rows.Close()
}

// Usernames come from preferred_username, made valid and unique
// (case-insensitively).
func TestUsernamesFromClaims(t *testing.T) {
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	g := startGlobal(t, baseConfig(idp), auth.Deps{DB: db.Pool})
	names := map[string]string{}
	for _, u := range []string{"ana", "ANA", "ana.maria@example.com", "z", "José Ñandú"} {
		tr := g.mustLoginOIDC(t, idp.IDToken(t, u))
		var name string
		if err := db.Pool.QueryRow(t.Context(), `SELECT username FROM players WHERE id = $1`, tr.PlayerID).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !auth.ValidUsername(name) {
			t.Errorf("%q → invalid username %q", u, name)
		}
		names[u] = name
	}
	if names["ana"] != "ana" || !strings.HasPrefix(names["ANA"], "ANA_") {
		t.Errorf("case-insensitive uniqueness: %v", names)
	}
	if names["ana.maria@example.com"] != "ana_maria" {
		t.Errorf("email-like preferred_username → %q (must not publish the domain)", names["ana.maria@example.com"])
	}
	if names["z"] != "z_Tester" { // too short: falls back to the name claim
		t.Errorf("short name → %q", names["z"])
	}
	if names["José Ñandú"] != "Jos_and" {
		t.Errorf("non-ASCII name → %q", names["José Ñandú"])
	}
}
