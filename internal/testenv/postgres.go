package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/localserver"
)

const templateDB = "cellgrid_template"

var (
	pgOnce   sync.Once
	pgServer *localserver.Postgres
	pgDir    string
	pgErr    error
	dbSeq    atomic.Int64
)

// Main runs the tests and stops the shared servers afterwards. Use it from
// TestMain: func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	stopShared()
	if pgServer != nil {
		_ = pgServer.Close()
	}
	if pgDir != "" {
		_ = os.RemoveAll(pgDir)
	}
	return code
}

func startPostgres() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pgDir, pgErr = os.MkdirTemp("", "cellgrid-pg-")
	if pgErr != nil {
		return
	}
	pgServer, pgErr = localserver.StartPostgres(ctx, localserver.PostgresConfig{Dir: pgDir, NoFsync: true})
	if pgErr != nil {
		return
	}
	admin, err := db.Open(ctx, pgServer.URL("postgres"))
	if err != nil {
		pgErr = err
		return
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+templateDB); err != nil {
		pgErr = fmt.Errorf("create template db: %w", err)
		return
	}
	tmpl, err := db.Open(ctx, pgServer.URL(templateDB))
	if err != nil {
		pgErr = err
		return
	}
	defer tmpl.Close()
	if _, err := db.Migrate(ctx, tmpl); err != nil {
		pgErr = fmt.Errorf("migrate template db: %w", err)
	}
}

// Database is a fresh, migrated database of the shared test PostgreSQL.
type Database struct {
	URL  string
	Pool *pgxpool.Pool
}

// NewDatabase returns a new database, migrated to the latest schema, that
// only this test uses. It is dropped at the end of the test.
func NewDatabase(t testing.TB) *Database {
	t.Helper()
	pgOnce.Do(startPostgres)
	if pgErr != nil {
		t.Fatalf("testenv: PostgreSQL unavailable: %v", pgErr)
	}
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), dbSeq.Add(1), sanitize(t.Name()))
	ctx := context.Background()
	admin, err := db.Open(ctx, pgServer.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %q TEMPLATE %s", name, templateDB)); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	url := pgServer.URL(name)
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		a, err := db.Open(context.Background(), pgServer.URL("postgres"))
		if err == nil {
			_, _ = a.Exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %q WITH (FORCE)", name))
			a.Close()
		}
	})
	return &Database{URL: url, Pool: pool}
}

// PostgresURL returns the URL of a database on the shared server, for tests
// that manage databases themselves (e.g. migrations).
func PostgresURL(t testing.TB, database string) string {
	t.Helper()
	pgOnce.Do(startPostgres)
	if pgErr != nil {
		t.Fatalf("testenv: PostgreSQL unavailable: %v", pgErr)
	}
	return pgServer.URL(database)
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}
