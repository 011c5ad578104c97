package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
	"github.com/google/uuid"
)

// A player logs in with an ID token the real provider issued through its
// code flow, calls a cell that only knows global's JWKS URL, refreshes,
// logs in again, and logs out.
func TestLoginEndToEnd(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	g := startGlobal(t, baseConfig(idp), auth.Deps{DB: db.Pool})
	cell := startCell(t, accesstoken.NewRemoteVerifier(ctx, g.Auth.Issuer(), g.JWKSURL()))

	user := idp.User("Alice.Smith")
	tr := g.mustLoginOIDC(t, idp.IDToken(t, "Alice.Smith"))
	if tr.ExpiresIn != 900 {
		t.Errorf("expires_in = %d, want 900", tr.ExpiresIn)
	}
	code, c := whoami(t, cell, tr.AccessToken)
	if code != 200 || c.PlayerID != tr.PlayerID || c.Username != "Alice_Smith" {
		t.Fatalf("cell whoami: %d %+v (player %s)", code, c, tr.PlayerID)
	}

	// Stored: identity (issuer, subject), username from the claim, email sealed.
	var (
		username string
		emailEnc []byte
	)
	if err := db.Pool.QueryRow(ctx, `SELECT p.username, p.email_enc FROM players p
		JOIN auth_identities i ON i.player_id = p.id
		WHERE i.issuer = $1 AND i.subject = $2 AND i.provider = 'oidc'`, idp.Issuer, user.ID).Scan(&username, &emailEnc); err != nil {
		t.Fatal(err)
	}
	if username != "Alice_Smith" {
		t.Errorf("username %q", username)
	}
	if strings.Contains(string(emailEnc), "players.test") || strings.Contains(string(emailEnc), "alice") {
		t.Fatalf("email stored in clear: %q", emailEnc)
	}
	sealer, _ := auth.NewSealer(testKey)
	email, err := sealer.Open(emailEnc, auth.EmailAAD(uuid.MustParse(tr.PlayerID)))
	if err != nil || string(email) != user.Email {
		t.Fatalf("email opens to %q, %v; want %q", email, err, user.Email)
	}
	if _, err := sealer.Open(emailEnc, auth.EmailAAD(uuid.New())); err == nil {
		t.Error("sealed email opens for another player id")
	}
	var refreshHash []byte
	if err := db.Pool.QueryRow(ctx, `SELECT token_hash FROM refresh_tokens LIMIT 1`).Scan(&refreshHash); err != nil || len(refreshHash) != 32 {
		t.Fatalf("refresh token hash %x %v", refreshHash, err)
	}
	if count(t, db, `SELECT count(*) FROM refresh_tokens WHERE position($1::bytea in token_hash) > 0`, []byte(tr.RefreshToken)) != 0 {
		t.Error("refresh token stored in clear")
	}

	// Refresh rotates the refresh token; the new access token works on the cell.
	code, tr2 := g.refresh(t, tr.RefreshToken)
	if code != 200 || tr2.RefreshToken == tr.RefreshToken || tr2.PlayerID != tr.PlayerID {
		t.Fatalf("refresh: %d %+v", code, tr2)
	}
	if code, c := whoami(t, cell, tr2.AccessToken); code != 200 || c.PlayerID != tr.PlayerID {
		t.Fatalf("whoami after refresh: %d %+v", code, c)
	}

	// Same identity again: same player, a second family.
	tr3 := g.mustLoginOIDC(t, idp.IDToken(t, "Alice.Smith"))
	if tr3.PlayerID != tr.PlayerID {
		t.Fatalf("second login made a new player %s != %s", tr3.PlayerID, tr.PlayerID)
	}
	if n := count(t, db, `SELECT count(*) FROM refresh_token_families WHERE player_id = $1`, tr.PlayerID); n != 2 {
		t.Errorf("families = %d, want 2", n)
	}

	// Logout needs a bearer token and revokes the family of the refresh token.
	if code := call(t, "POST", g.Srv.URL+"/auth/logout", "", map[string]string{"refresh_token": tr2.RefreshToken}, nil); code != 401 {
		t.Fatalf("logout without bearer: %d", code)
	}
	if code := call(t, "POST", g.Srv.URL+"/auth/logout", tr2.AccessToken, map[string]string{"refresh_token": tr2.RefreshToken}, nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code, tr := g.refresh(t, tr2.RefreshToken); code != 401 || tr.Error.Code != "invalid_refresh_token" {
		t.Fatalf("refresh after logout: %d %+v", code, tr)
	}
	// The other session is untouched.
	if code, _ := g.refresh(t, tr3.RefreshToken); code != 200 {
		t.Fatalf("other family after logout: %d", code)
	}
	// Another player cannot log this one out.
	other := g.mustLoginOIDC(t, idp.IDToken(t, "bob"))
	if code := call(t, "POST", g.Srv.URL+"/auth/logout", other.AccessToken, map[string]string{"refresh_token": tr3.RefreshToken}, nil); code != 403 {
		t.Fatalf("logout with another player's refresh token: %d", code)
	}

	if got := metricValue(t, g, "cellgrid_auth_logins_total", "result", "new_player"); got != 2 {
		t.Errorf("logins_total{new_player} = %v, want 2", got)
	}
	if got := metricValue(t, g, "cellgrid_auth_logins_total", "result", "ok"); got != 1 {
		t.Errorf("logins_total{ok} = %v, want 1", got)
	}
}
