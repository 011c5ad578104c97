package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/global"
)

// globalSetup is everything `cellgrid global` resolved from its flags and
// environment before it opens a connection.
type globalSetup struct {
	Cfg   global.Config
	Infra infraFlags
}

func globalCmd(rf *rootFlags, st starters) *cobra.Command {
	var cfg global.Config
	var inf infraFlags
	var af authFlags
	setup := func() (globalSetup, error) {
		c := cfg
		var err error
		if c.Auth, err = af.config(); err != nil {
			return globalSetup{}, err
		}
		if c.Auth.EncryptionKey == nil {
			return globalSetup{}, fmt.Errorf("--encryption-key (or CELLGRID_ENCRYPTION_KEY) is required")
		}
		if err := inf.checkDB(); err != nil {
			return globalSetup{}, err
		}
		return globalSetup{Cfg: c, Infra: inf}, nil
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
	inf.register(f, "")
	return cmd
}

// startGlobal opens the global layer's connections and runs it until ctx ends.
func startGlobal(ctx context.Context, log *slog.Logger, s globalSetup) error {
	in, err := s.Infra.open(ctx, "cellgrid-global")
	if err != nil {
		return err
	}
	defer in.Close()
	g, err := global.New(s.Cfg, global.Deps{DB: in.DB, Redis: in.Redis, NATS: in.NATS, Log: log})
	if err != nil {
		return err
	}
	return g.Run(ctx)
}
