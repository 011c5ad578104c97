package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/topology"
)

// globalSetup is everything `cellgrid global` resolved from its flags and
// environment before it opens a connection.
type globalSetup struct {
	Cfg    global.Config
	Infra  infraFlags
	Consul string // Consul agent to register with and discover cells from ("": none)
}

func globalCmd(rf *rootFlags, st starters) *cobra.Command {
	var cfg global.Config
	var inf infraFlags
	var af authFlags
	var of opsFlags
	var consulAddr string
	var devGame bool
	setup := func() (globalSetup, error) {
		c := cfg
		if devGame {
			d := devstack.DevGlobal()
			d.Addr, d.PublicURL, d.Cells = cfg.Addr, cfg.PublicURL, cfg.Cells
			c = d
		}
		var err error
		if c.Auth, err = af.config(); err != nil {
			return globalSetup{}, err
		}
		if c.Ops, err = of.config(); err != nil {
			return globalSetup{}, err
		}
		if c.Auth.EncryptionKey == nil {
			return globalSetup{}, fmt.Errorf("--encryption-key (or CELLGRID_ENCRYPTION_KEY) is required")
		}
		if err := inf.checkDB(); err != nil {
			return globalSetup{}, err
		}
		return globalSetup{Cfg: c, Infra: inf, Consul: consulAddr}, nil
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
	f.StringVar(&cfg.OpsAddr, "ops-addr", "127.0.0.1:0", "ops listener (/metrics, /readyz with error text): keep it private; port 0 picks a free one (logged at start)")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL clients and cells use for this layer (the token issuer); default the listen URL")
	af.register(f, false)
	of.register(f)
	f.StringSliceVar(&cfg.Cells, "cells", nil, "cell ids whose streams to source from the start (optional: cells are also sourced when they appear in the topology)")
	inf.register(f, "")
	f.BoolVar(&devGame, "dev-game-config", false, "use the dev stack's catalog, boards, achievements and rewards (cellgrid dev --nomad)")
	f.StringVar(&consulAddr, "consul", "", "Consul agent host:port: register this layer with a /readyz check and take the cells from the Consul catalog")
	return cmd
}

// startGlobal opens the global layer's connections and runs it until ctx ends.
func startGlobal(ctx context.Context, log *slog.Logger, s globalSetup) error {
	in, err := s.Infra.open(ctx, "cellgrid-global")
	if err != nil {
		return err
	}
	defer in.Close()
	topo := topology.NewRegistry()
	g, err := global.New(s.Cfg, global.Deps{DB: in.DB, Redis: in.Redis, NATS: in.NATS, Topology: topo, Log: log})
	if err != nil {
		return err
	}
	if s.Consul == "" {
		return g.Run(ctx)
	}
	cc, reg, err := globalRegistrar(s.Consul, g.URL(), log)
	if err != nil {
		return err
	}
	watch := func(ctx context.Context) error {
		return topo.WatchConsul(ctx, cc, topology.DiscoveryConfig{}, log.With("component", "topology-consul"))
	}
	return runAll(ctx, g.Run, reg.Run, watch)
}
