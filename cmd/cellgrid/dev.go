package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/devstack"
)

func devCmd(rf *rootFlags, st starters) *cobra.Command {
	var cfg devstack.Config
	var af authFlags
	var onNomad bool
	var useWAN bool
	var wanConfig string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack on this machine: PostgreSQL, Redis, NATS supercluster, global layer and cells",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			c := cfg
			if c.Auth, err = af.config(); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			c.DGSCommand = []string{exe, "dgs"}
			if c.WAN, err = wanLayout(useWAN, wanConfig); err != nil {
				return err
			}
			return st.dev(cmd.Context(), cmd.OutOrStdout(), log, devRun{Cfg: c, Nomad: onNomad, Exe: exe})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", ".cellgrid", "data folder for PostgreSQL, Redis and JetStream (reused across runs)")
	f.StringSliceVar(&cfg.Cells, "cells", devstack.DefaultCells, "cell ids to run")
	f.StringVar(&cfg.GlobalAddr, "global-addr", "127.0.0.1:8080", "global layer listen address")
	f.IntVar(&cfg.CellBasePort, "cell-base-port", 8081, "cell i listens on 127.0.0.1:base+i (0: free ports)")
	f.StringVar(&cfg.GlobalOpsAddr, "global-ops-addr", "127.0.0.1:9080", "global layer's ops listener (/metrics, /readyz with error text)")
	f.IntVar(&cfg.CellOpsBasePort, "cell-ops-base-port", 9081, "cell i's ops listener is on 127.0.0.1:base+i (0: free ports)")
	f.DurationVar(&cfg.MatchTimeLimit, "match-time-limit", devstack.DefaultMatchTimeLimit, "match length of every DGS, short for a demo (cellgrid dgs alone defaults to 3m)")
	f.StringArrayVar(&cfg.DGSArgs, "dgs-arg", nil, "extra argument for every DGS, e.g. --dgs-arg=--score-limit=5 (repeatable)")
	f.StringArrayVar(&cfg.AdminDevices, "admin-device", nil, "guest device id that is an admin on the /ops console (repeatable)")
	f.BoolVar(&onNomad, "nomad", false, "run global and cells as jobs on local Nomad and Consul dev agents (build them: build/hashistack.sh)")
	f.BoolVar(&useWAN, "wan", false, "put the player and the regions behind an emulated WAN (eu-west-1 20 ms, us-east-1 80 ms, ap-south-1 150 ms one way)")
	f.StringVar(&wanConfig, "wan-config", "", "JSON file with another WAN layout (implies --wan; see devstack.LoadWAN)")
	af.register(f, true)
	return cmd
}

// devRun is what `cellgrid dev` resolved from its flags.
type devRun struct {
	Cfg   devstack.Config
	Nomad bool   // run global and cells as jobs on local Nomad and Consul agents
	Exe   string // this binary, for the Nomad jobs
}

// startDev starts the dev stack (in this process, or on local Nomad and
// Consul agents), prints where everything listens and runs it until ctx
// ends.
func startDev(ctx context.Context, out io.Writer, log *slog.Logger, r devRun) error {
	if r.Nomad {
		return runDevNomad(ctx, out, r.Cfg, r.Exe, log)
	}
	st, err := devstack.Start(ctx, r.Cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "global  %s  ops %s\n", st.GlobalURL, st.OpsURLs["global"])
	for _, c := range st.Cells {
		fmt.Fprintf(out, "cell    %-12s %s  relay %s  ops %s\n", c.ID, c.API, c.Relay, st.OpsURLs[c.ID])
	}
	fmt.Fprintf(out, "nats    %s  (ops credential: --nats-creds %s)\n", st.NATSURL(), st.OpsCredsFile())
	fmt.Fprintf(out, "ops     %s/ops\n", st.GlobalURL)
	st.PrintWANLayout(out)
	fmt.Fprintln(out, "Ctrl-C stops everything.")
	return st.Run(ctx)
}
