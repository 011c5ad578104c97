package store_test

import (
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newPlayer(t testing.TB, pool *pgxpool.Pool, name string, public bool) uuid.UUID {
	t.Helper()
	return uuid.MustParse(testenv.NewPlayerWith(t, pool, testenv.Player{Username: name, PublicInventory: public}))
}
