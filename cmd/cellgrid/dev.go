package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/devstack"
)

func devCmd(rf *rootFlags) *cobra.Command {
	var cfg devstack.Config
	var af authFlags
	var onNomad bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack on this machine: PostgreSQL, Redis, NATS supercluster, global layer and cells",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			if cfg.Auth, err = af.config(); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.DGSCommand = []string{exe, "dgs"}
			ctx := cmd.Context()
			if onNomad {
				return runDevNomad(ctx, cmd.OutOrStdout(), cfg, exe, log)
			}
			st, err := devstack.Start(ctx, cfg, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "global  %s\n", st.GlobalURL)
			for _, c := range st.Cells {
				fmt.Fprintf(out, "cell    %-12s %s  relay %s\n", c.ID, c.API, c.Relay)
			}
			fmt.Fprintf(out, "nats    %s\n", st.NATSURL())
			fmt.Fprintf(out, "ops     %s/ops\n", st.GlobalURL)
			fmt.Fprintln(out, "Ctrl-C stops everything.")
			return st.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", ".cellgrid", "data folder for PostgreSQL, Redis and JetStream (reused across runs)")
	f.StringSliceVar(&cfg.Cells, "cells", devstack.DefaultCells, "cell ids to run")
	f.StringVar(&cfg.GlobalAddr, "global-addr", "127.0.0.1:8080", "global layer listen address")
	f.IntVar(&cfg.CellBasePort, "cell-base-port", 8081, "cell i listens on 127.0.0.1:base+i (0: free ports)")
	f.DurationVar(&cfg.MatchTimeLimit, "match-time-limit", devstack.DefaultMatchTimeLimit, "match length of every DGS, short for a demo (cellgrid dgs alone defaults to 3m)")
	f.StringArrayVar(&cfg.DGSArgs, "dgs-arg", nil, "extra argument for every DGS, e.g. --dgs-arg=--score-limit=5 (repeatable)")
	f.StringArrayVar(&cfg.AdminDevices, "admin-device", nil, "guest device id that is an admin on the /ops console (repeatable)")
	f.BoolVar(&onNomad, "nomad", false, "run global and cells as jobs on local Nomad and Consul dev agents (build them: build/hashistack.sh)")
	af.register(f, true)
	return cmd
}
