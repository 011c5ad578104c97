package db_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMigrateAndCheckSchema(t *testing.T) {
	ctx := context.Background()
	admin, err := db.Open(ctx, testenv.PostgresURL(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS migrate_fresh WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE migrate_fresh"); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Open(ctx, testenv.PostgresURL(t, "migrate_fresh"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	if err := db.CheckSchema(ctx, pool); !errors.Is(err, db.ErrSchemaBehind) {
		t.Fatalf("empty database: CheckSchema = %v, want ErrSchemaBehind", err)
	}
	v, err := db.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := db.LatestVersion()
	if v != latest {
		t.Fatalf("migrated to %d, want %d", v, latest)
	}
	if err := db.CheckSchema(ctx, pool); err != nil {
		t.Fatalf("after migrate: %v", err)
	}
	// Idempotent.
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	// A schema older than the binary is refused.
	if _, err := pool.Exec(ctx, "UPDATE schema_migrations SET version = 0"); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckSchema(ctx, pool); !errors.Is(err, db.ErrSchemaBehind) {
		t.Fatalf("old schema: CheckSchema = %v, want ErrSchemaBehind", err)
	}
	if e, err := db.DetectEngine(ctx, pool); err != nil || e != db.PostgreSQL {
		t.Fatalf("engine = %v, %v", e, err)
	}
	// The CockroachDB layer does nothing on PostgreSQL.
	ran, err := db.ApplyMultiRegion(ctx, pool, db.MultiRegion{Database: "migrate_fresh", PrimaryRegion: "eu-west-1"})
	if err != nil || ran {
		t.Fatalf("ApplyMultiRegion on PostgreSQL: ran=%v err=%v", ran, err)
	}
}

// TestEveryTableHasALocality keeps the CockroachDB layer in step with the
// migrations: every table they create is either player-homed or global.
func TestEveryTableHasALocality(t *testing.T) {
	d := testenv.NewDatabase(t)
	rows, err := d.Pool.Query(context.Background(),
		`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(db.PlayerHomedTables, name) && !slices.Contains(db.GlobalTables, name) {
			t.Errorf("table %s has no multi-region locality in internal/db/multiregion.go", name)
		}
	}
}
