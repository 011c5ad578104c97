package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/global"
)

func globalCmd(rf *rootFlags) *cobra.Command {
	var cfg global.Config
	var inf infraFlags
	var af authFlags
	var of opsFlags
	cmd := &cobra.Command{
		Use:   "global",
		Short: "Run the global layer (auth, profiles, store, leaderboards, topology)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			if cfg.Auth, err = af.config(); err != nil {
				return err
			}
			if cfg.Ops, err = of.config(); err != nil {
				return err
			}
			if cfg.Auth.EncryptionKey == nil {
				return fmt.Errorf("--encryption-key (or CELLGRID_ENCRYPTION_KEY) is required")
			}
			ctx := cmd.Context()
			in, err := inf.open(ctx, "cellgrid-global")
			if err != nil {
				return err
			}
			defer in.Close()
			g, err := global.New(cfg, global.Deps{DB: in.DB, Redis: in.Redis, NATS: in.NATS, Log: log})
			if err != nil {
				return err
			}
			return g.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "0.0.0.0:8080", "HTTP listen address")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL clients and cells use for this layer (the token issuer); default the listen URL")
	af.register(f, false)
	of.register(f)
	f.StringSliceVar(&cfg.Cells, "cells", nil, "cell ids whose streams to source")
	inf.register(f, "")
	return cmd
}
