package testenv_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestPlayers(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	plain := testenv.NewPlayer(t, d.Pool, "plain")
	id := uuid.NewString()
	if got := testenv.NewPlayerWith(t, d.Pool, testenv.Player{ID: id, Username: "rich", EloRating: 1900, PublicInventory: true}); got != id {
		t.Fatalf("id %s, want %s", got, id)
	}
	var elo int
	var public bool
	if err := d.Pool.QueryRow(ctx, `SELECT elo_rating, public_inventory FROM players WHERE id = $1`, id).Scan(&elo, &public); err != nil || elo != 1900 || !public {
		t.Fatalf("rich: elo %d public %v err %v", elo, public, err)
	}
	if err := d.Pool.QueryRow(ctx, `SELECT elo_rating, public_inventory FROM players WHERE id = $1`, plain).Scan(&elo, &public); err != nil || elo != 1000 || public {
		t.Fatalf("plain: elo %d public %v err %v, want the defaults", elo, public, err)
	}
	if _, err := testenv.InsertPlayer(ctx, d.Pool, testenv.Player{Username: "plain"}); err == nil {
		t.Fatal("a duplicate username was inserted")
	}
}

func TestAuthHelpers(t *testing.T) {
	caller := func(w http.ResponseWriter, r *http.Request) {
		id, err := accesstoken.Caller(r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = w.Write([]byte(id.String()))
	}
	me := uuid.NewString()
	for name, h := range map[string]http.Handler{
		"TrustPlayerHeader": testenv.TrustPlayerHeader(http.HandlerFunc(caller)),
		"AuthAs":            testenv.AuthAs(me)(http.HandlerFunc(caller)),
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(testenv.PlayerHeader, me)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 || w.Body.String() != me {
			t.Errorf("%s: %d %q, want 200 %s", name, w.Code, w.Body, me)
		}
	}
	w := httptest.NewRecorder()
	testenv.TrustPlayerHeader(http.HandlerFunc(caller)).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("no header: %d, want 401", w.Code)
	}
	w = httptest.NewRecorder()
	caller(w, testenv.AsPlayer(httptest.NewRequest("GET", "/", nil), me))
	if w.Body.String() != me {
		t.Errorf("AsPlayer: %q", w.Body)
	}
}
