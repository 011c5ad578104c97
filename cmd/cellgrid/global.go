package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/topology"
)

func globalCmd(rf *rootFlags) *cobra.Command {
	var cfg global.Config
	var inf infraFlags
	var af authFlags
	var of opsFlags
	var consulAddr string
	var devGame bool
	cmd := &cobra.Command{
		Use:   "global",
		Short: "Run the global layer (auth, profiles, store, leaderboards, topology)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			if devGame {
				d := devstack.DevGlobal()
				d.Addr, d.PublicURL, d.Cells = cfg.Addr, cfg.PublicURL, cfg.Cells
				cfg = d
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
			topo := topology.NewRegistry()
			g, err := global.New(cfg, global.Deps{DB: in.DB, Redis: in.Redis, NATS: in.NATS, Topology: topo, Log: log})
			if err != nil {
				return err
			}
			if consulAddr == "" {
				return g.Run(ctx)
			}
			cc, reg, err := globalRegistrar(consulAddr, g.URL(), log)
			if err != nil {
				return err
			}
			watch := func(ctx context.Context) error {
				return topo.WatchConsul(ctx, cc, topology.DiscoveryConfig{}, log.With("component", "topology-consul"))
			}
			return runAll(ctx, g.Run, reg.Run, watch)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "0.0.0.0:8080", "HTTP listen address")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL clients and cells use for this layer (the token issuer); default the listen URL")
	af.register(f, false)
	of.register(f)
	f.StringSliceVar(&cfg.Cells, "cells", nil, "cell ids whose streams to source")
	inf.register(f, "")
	f.BoolVar(&devGame, "dev-game-config", false, "use the dev stack's catalog, boards, achievements and rewards (cellgrid dev --nomad)")
	f.StringVar(&consulAddr, "consul", "", "Consul agent host:port: register this layer with a /readyz check and take the cells from the Consul catalog")
	return cmd
}
