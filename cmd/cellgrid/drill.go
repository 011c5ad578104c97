package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/devstack"
)

// drillCmd is `cellgrid drill failover`: a throwaway dev stack behind an
// emulated WAN, bots and shoppers in every region, one region cut, then
// the audit of everything accepted against the database.
func drillCmd(rf *rootFlags) *cobra.Command {
	root := &cobra.Command{Use: "drill", Short: "Failure drills on a throwaway dev stack"}
	var cfg devstack.DrillConfig
	var dgsArgs []string
	var keep bool
	failover := &cobra.Command{
		Use:   "failover",
		Short: "Cut one region during play and audit that nothing accepted was lost or doubled",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "cellgrid-drill-")
			if err != nil {
				return err
			}
			if !keep {
				defer os.RemoveAll(dir)
			}
			ctx := cmd.Context()
			st, err := devstack.Start(ctx, devstack.Config{
				DataDir: filepath.Join(dir, "data"), Ephemeral: true, WAN: devstack.DrillWAN(),
				DGSCommand: []string{exe, "dgs"}, DGSArgs: dgsArgs,
			}, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			st.PrintWANLayout(out)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- st.Run(runCtx) }()
			cfg.Log = out
			rep, derr := st.DrillFailover(ctx, cfg)
			stop()
			rerr := <-done
			rep.Print(out)
			if derr != nil {
				return derr
			}
			if rerr != nil {
				return rerr
			}
			if bad := rep.Purchases.Lost + rep.Purchases.Doubled + rep.Telemetry.Lost + rep.Telemetry.Doubled + rep.Results.Lost + rep.Results.Doubled; bad > 0 || !rep.Converged {
				return errors.New("drill failover: the audit found losses or doubles")
			}
			return nil
		},
	}
	f := failover.Flags()
	f.StringVar(&cfg.Cut, "cut", "eu-west-1", "region (cell) to cut")
	f.DurationVar(&cfg.Warmup, "warmup", 15*time.Second, "play before the cut")
	f.DurationVar(&cfg.After, "after", 15*time.Second, "play after the cut")
	f.DurationVar(&cfg.Converge, "converge", 60*time.Second, "longest wait for the audit after the heal")
	f.IntVar(&cfg.BotsPerCell, "bots-per-cell", 2, "bots playing in each region at a time")
	f.IntVar(&cfg.Shoppers, "shoppers", 4, "players buying items and sending telemetry")
	f.StringArrayVar(&dgsArgs, "dgs-arg", []string{"--time-limit=8s"}, "extra argument for every DGS (repeatable)")
	f.BoolVar(&keep, "keep", false, "keep the stack's data folder")
	root.AddCommand(failover)
	return root
}
