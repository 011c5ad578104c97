package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// starters are the second half of every server command: a command's RunE
// first turns its flags and environment into a setup (no I/O: testable on
// its own), then hands it to its starter, which opens connections and
// runs. main uses defaultStarters; the flag tests pass starters that only
// record what they were given.
type starters struct {
	dev     func(ctx context.Context, out io.Writer, log *slog.Logger, r devRun) error
	global  func(ctx context.Context, log *slog.Logger, s globalSetup) error
	cell    func(ctx context.Context, out io.Writer, log *slog.Logger, s cellSetup) error
	drain   func(ctx context.Context, out io.Writer, s drainSetup) error
	migrate func(ctx context.Context, out io.Writer, log *slog.Logger, s migrateSetup) error
	bots    func(ctx context.Context, out, errOut io.Writer, r botsRun) error
	dgs     func(args []string, stderr io.Writer) int
}

func defaultStarters() starters {
	return starters{dev: startDev, global: startGlobal, cell: startCell, drain: startDrain,
		migrate: startMigrate, bots: startBots, dgs: startDGS}
}

// newRoot builds the whole command tree.
func newRoot(st starters) *cobra.Command {
	rf := &rootFlags{}
	root := &cobra.Command{
		Use:           "cellgrid",
		Short:         "cellgrid: an edge-distributed regional cell game backend",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&rf.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&rf.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(
		versionCmd(),
		migrateCmd(rf, st),
		devCmd(rf, st),
		globalCmd(rf, st),
		botsCmd(rf, st),
		cellCmd(rf, st),
		dgsCmd(st),
		jobsCmd(rf),
		regionCmd(rf),
		drillCmd(rf),
	)
	return root
}

// errExit carries a child's exit code up to main.
type errExit int

func (e errExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
