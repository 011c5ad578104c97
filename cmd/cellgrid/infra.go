package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/redis/rueidis"
	"github.com/spf13/pflag"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/redisclient"
)

// infraFlags are the --db, --redis and --nats flags of every command that
// talks to the shared servers, and their setup, written once. Each flag
// defaults to its environment variable (CELLGRID_DB, CELLGRID_REDIS,
// CELLGRID_NATS), which is how Nomad jobs pass them: a required --db is
// satisfied by the flag or by the variable, and checked when used (not
// with cobra's MarkFlagRequired, which ignores the variable).
type infraFlags struct {
	db, redis, nats string
}

const (
	defaultRedis = "127.0.0.1:6379"
	defaultNATS  = "nats://127.0.0.1:4222"
)

// registerDB adds --db.
func (f *infraFlags) registerDB(fs *pflag.FlagSet, help string) {
	fs.StringVar(&f.db, "db", envOr("CELLGRID_DB", ""), help+"; env CELLGRID_DB")
}

// registerNATS adds --nats.
func (f *infraFlags) registerNATS(fs *pflag.FlagSet, help string) {
	fs.StringVar(&f.nats, "nats", envOr("CELLGRID_NATS", defaultNATS), help+"; env CELLGRID_NATS")
}

// register adds all three; whose names the servers ("the cell's").
func (f *infraFlags) register(fs *pflag.FlagSet, whose string) {
	f.registerDB(fs, "database URL (PostgreSQL or CockroachDB)")
	fs.StringVar(&f.redis, "redis", envOr("CELLGRID_REDIS", defaultRedis), whose+"Redis host:port; env CELLGRID_REDIS")
	f.registerNATS(fs, whose+"NATS URL")
}

// checkDB reports a missing --db (and CELLGRID_DB) before anything starts.
func (f *infraFlags) checkDB() error {
	if f.db == "" {
		return errors.New("--db (or CELLGRID_DB) is required")
	}
	return nil
}

// openDB opens the database pool; --db (or CELLGRID_DB) is required.
func (f *infraFlags) openDB(ctx context.Context) (*pgxpool.Pool, error) {
	if err := f.checkDB(); err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, f.db)
	if err != nil {
		return nil, fmt.Errorf("--db: %w", err)
	}
	return pool, nil
}

// connectNATS connects to --nats as name; servers (reconnect true)
// reconnect forever, one-shot ops commands do not.
func (f *infraFlags) connectNATS(name string, reconnect bool) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name)}
	if reconnect {
		opts = append(opts, nats.MaxReconnects(-1))
	}
	nc, err := nats.Connect(f.nats, opts...)
	if err != nil {
		return nil, fmt.Errorf("--nats %s: %w", f.nats, err)
	}
	return nc, nil
}

// infra is what a server command runs on.
type infra struct {
	DB    *pgxpool.Pool
	Redis rueidis.Client
	NATS  *nats.Conn
}

// open sets up a server's shared clients: the database pool (refusing a
// schema behind the migrations: run `cellgrid migrate`), the Redis
// client and the NATS connection named name. On error nothing stays open.
func (f *infraFlags) open(ctx context.Context, name string) (_ *infra, err error) {
	in := &infra{}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	if in.DB, err = f.openDB(ctx); err != nil {
		return nil, err
	}
	if err := db.CheckSchema(ctx, in.DB); err != nil {
		return nil, err
	}
	if in.Redis, err = redisclient.New(redisclient.Config{Addr: f.redis}); err != nil {
		return nil, fmt.Errorf("--redis %s: %w", f.redis, err)
	}
	if in.NATS, err = f.connectNATS(name, true); err != nil {
		return nil, err
	}
	return in, nil
}

// Close closes what open opened, in reverse order.
func (in *infra) Close() {
	if in.NATS != nil {
		in.NATS.Close()
	}
	if in.Redis != nil {
		in.Redis.Close()
	}
	if in.DB != nil {
		in.DB.Close()
	}
}
