package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/redisclient"
)

// globalSetup is everything `cellgrid global` resolved from its flags and
// environment before it opens a connection.
type globalSetup struct {
	Cfg             global.Config
	DB, Redis, NATS string
}

func globalCmd(rf *rootFlags, st starters) *cobra.Command {
	var cfg global.Config
	var dbURL, redisAddr, natsURL string
	var af authFlags
	setup := func() (globalSetup, error) {
		c := cfg
		var err error
		if c.Auth, err = af.config(); err != nil {
			return globalSetup{}, err
		}
		if c.Auth.EncryptionKey == nil {
			return globalSetup{}, fmt.Errorf("--encryption-key (or env CELLGRID_ENCRYPTION_KEY) is required")
		}
		if err := required(dbURL, "db", "CELLGRID_DB"); err != nil {
			return globalSetup{}, err
		}
		return globalSetup{Cfg: c, DB: dbURL, Redis: redisAddr, NATS: natsURL}, nil
	}
	cmd := &cobra.Command{
		Use:   "global",
		Short: "Run the global layer (auth, profiles, store, leaderboards, topology)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			s, err := setup()
			if err != nil {
				return err
			}
			return st.global(cmd.Context(), log, s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "0.0.0.0:8080", "HTTP listen address")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL clients and cells use for this layer (the token issuer); default the listen URL")
	af.register(f, false)
	f.StringSliceVar(&cfg.Cells, "cells", nil, "cell ids whose streams to source")
	f.StringVar(&dbURL, "db", envOr("CELLGRID_DB", ""), "database URL (required); env CELLGRID_DB")
	f.StringVar(&redisAddr, "redis", envOr("CELLGRID_REDIS", "127.0.0.1:6379"), "Redis host:port; env CELLGRID_REDIS")
	f.StringVar(&natsURL, "nats", envOr("CELLGRID_NATS", "nats://127.0.0.1:4222"), "NATS URL; env CELLGRID_NATS")
	return cmd
}

// startGlobal opens the global layer's connections and runs it until ctx ends.
func startGlobal(ctx context.Context, log *slog.Logger, s globalSetup) error {
	pool, err := db.Open(ctx, s.DB)
	if err != nil {
		return err
	}
	defer pool.Close()
	rc, err := redisclient.New(redisclient.Config{Addr: s.Redis})
	if err != nil {
		return err
	}
	defer rc.Close()
	nc, err := nats.Connect(s.NATS, nats.Name("cellgrid-global"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	g, err := global.New(ctx, s.Cfg, global.Deps{DB: pool, Redis: rc, NATS: nc, Log: log})
	if err != nil {
		return err
	}
	return g.Run(ctx)
}
