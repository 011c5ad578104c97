package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Querier is a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Player is a test player row; zero fields take the schema's defaults.
type Player struct {
	// ID is the player's UUID; empty lets the database generate one.
	ID string
	// Username is required (unique).
	Username string
	// EloRating; 0 keeps the default rating.
	EloRating int
	// PublicInventory shows the player's inventory to others.
	PublicInventory bool
}

// InsertPlayer inserts p with q and returns its id. It is the one place
// tests write players rows (in a transaction of their own when q is one).
func InsertPlayer(ctx context.Context, q Querier, p Player) (string, error) {
	cols, args := []string{"username"}, []any{p.Username}
	if p.ID != "" {
		cols, args = append(cols, "id"), append(args, p.ID)
	}
	if p.EloRating != 0 {
		cols, args = append(cols, "elo_rating"), append(args, p.EloRating)
	}
	if p.PublicInventory {
		cols, args = append(cols, "public_inventory"), append(args, true)
	}
	marks := make([]string, len(cols))
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	var id string
	sql := "INSERT INTO players (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ") RETURNING id::TEXT"
	if err := q.QueryRow(ctx, sql, args...).Scan(&id); err != nil {
		return "", fmt.Errorf("testenv: insert player %q: %w", p.Username, err)
	}
	return id, nil
}

// NewPlayer inserts a player named username with q and returns its id,
// failing t on error.
func NewPlayer(t testing.TB, q Querier, username string) string {
	t.Helper()
	return NewPlayerWith(t, q, Player{Username: username})
}

// NewPlayerWith inserts p with q and returns its id, failing t on error.
func NewPlayerWith(t testing.TB, q Querier, p Player) string {
	t.Helper()
	id, err := InsertPlayer(context.Background(), q, p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
