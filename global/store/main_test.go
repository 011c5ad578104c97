package store_test

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// fakeAuth trusts X-Player as the caller: the token itself is accesstoken's
// concern and tested there.
func fakeAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.Header.Get("X-Player")
		if p == "" {
			httpapi.WriteError(w, httpapi.Unauthorized("no player"))
			return
		}
		next.ServeHTTP(w, r.WithContext(accesstoken.WithClaims(r.Context(), accesstoken.Claims{PlayerID: p})))
	})
}

func newPlayer(t testing.TB, pool *pgxpool.Pool, name string, public bool) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := pool.QueryRow(context.Background(),
		`INSERT INTO players (username, public_inventory) VALUES ($1, $2) RETURNING id`, name, public).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
