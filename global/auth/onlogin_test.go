package auth_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/internal/testenv/testoidc"
)

// TestOnLoginGetsTheVerifiedClaims: the hook global/ops records roles with
// runs in the login transaction with the ID token's claims (an extra claim
// such as groups included) and with nil for a device login; its error
// fails the login.
func TestOnLoginGetsTheVerifiedClaims(t *testing.T) {
	db := testenv.NewDatabase(t)
	idp := testoidc.NewOIDCProvider(t)
	type call struct {
		player uuid.UUID
		issuer string
		claims json.RawMessage
	}
	var mu sync.Mutex
	var calls []call
	refuse := false
	cfg := baseConfig(idp)
	cfg.AllowDeviceLogin = true
	g := startGlobal(t, cfg, auth.Deps{DB: db.Pool, OnLogin: func(ctx context.Context, tx pgx.Tx, player uuid.UUID, issuer string, claims json.RawMessage) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{player, issuer, claims})
		if refuse {
			return context.Canceled
		}
		return nil
	}})
	claims := idp.Claims("dana")
	claims["groups"] = []string{"players", "sre"}
	s := g.mustLoginOIDC(t, idp.SignClaims(t, claims))
	if code, _ := g.login(t, map[string]string{"provider": "device", "device_id": "onlogin-device-0001"}); code != 200 {
		t.Fatalf("device login: %d", code)
	}
	mu.Lock()
	if len(calls) != 2 {
		t.Fatalf("OnLogin ran %d times, want 2", len(calls))
	}
	var got struct {
		Sub    string   `json:"sub"`
		Groups []string `json:"groups"`
	}
	if err := json.Unmarshal(calls[0].claims, &got); err != nil || calls[0].player.String() != s.PlayerID || calls[0].issuer != idp.Issuer ||
		got.Sub != claims["sub"] || len(got.Groups) != 2 || got.Groups[1] != "sre" {
		t.Fatalf("OIDC login hook: %+v %s (%v)", calls[0], calls[0].claims, err)
	}
	if calls[1].claims != nil || calls[1].issuer != "device" {
		t.Fatalf("device login hook: %+v", calls[1])
	}
	refuse = true
	mu.Unlock()
	if code, _ := g.login(t, map[string]string{"provider": "device", "device_id": "onlogin-device-0001"}); code != 500 {
		t.Fatalf("login whose hook failed: %d, want 500", code)
	}
}
