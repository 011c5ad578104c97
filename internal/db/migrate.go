package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/database/cockroachdb"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrSchemaBehind is returned by CheckSchema when the database has not been
// migrated to the version this binary needs.
var ErrSchemaBehind = errors.New("database schema is behind this binary: run `cellgrid migrate`")

// LatestVersion is the highest migration version embedded in the binary.
func LatestVersion() (uint, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return 0, err
	}
	var versions []int
	for _, e := range entries {
		v, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("migration %s: bad version", e.Name())
		}
		versions = append(versions, n)
	}
	if len(versions) == 0 {
		return 0, errors.New("no migrations embedded")
	}
	sort.Ints(versions)
	return uint(versions[len(versions)-1]), nil
}

// newMigrate builds a golang-migrate instance with the driver that matches
// the engine: the pgx driver (advisory lock) on PostgreSQL, the cockroachdb
// driver (lock table) on CockroachDB.
func newMigrate(ctx context.Context, pool *pgxpool.Pool) (*migrate.Migrate, *sql.DB, error) {
	engine, err := DetectEngine(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	var drv database.Driver
	switch engine {
	case CockroachDB:
		drv, err = cockroachdb.WithInstance(sqlDB, &cockroachdb.Config{})
	default:
		drv, err = pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{})
	}
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("migrate driver: %w", err)
	}
	src, err := iofs.New(migrationFS, "migrations")
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("migrate source: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, string(engine), drv)
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	return m, sqlDB, nil
}

// Migrate applies every pending migration and returns the resulting version.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (uint, error) {
	m, sqlDB, err := newMigrate(ctx, pool)
	if err != nil {
		return 0, err
	}
	// Closing m releases the driver's dedicated connection; without it the
	// pool's Close would wait for it forever.
	defer func() {
		m.Close()
		sqlDB.Close()
	}()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("migrate up: %w", err)
	}
	v, _, err := m.Version()
	if err != nil {
		return 0, fmt.Errorf("migrate version: %w", err)
	}
	return v, nil
}

// CheckSchema returns ErrSchemaBehind unless the database is at the latest
// embedded version and not dirty. Services call it at start and refuse to
// run on an older schema.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	latest, err := LatestVersion()
	if err != nil {
		return err
	}
	var version int64
	var dirty bool
	err = pool.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations LIMIT 1").Scan(&version, &dirty)
	if err != nil {
		return fmt.Errorf("%w (reading schema_migrations: %v)", ErrSchemaBehind, err)
	}
	if dirty {
		return fmt.Errorf("%w: version %d is dirty (a migration failed half-way)", ErrSchemaBehind, version)
	}
	if uint(version) < latest {
		return fmt.Errorf("%w: database at %d, binary needs %d", ErrSchemaBehind, version, latest)
	}
	return nil
}
