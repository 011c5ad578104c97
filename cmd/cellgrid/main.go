// Command cellgrid is the one binary of cellgrid: every role (dev, global,
// cell, dgs, bots) and every ops verb is a subcommand, so one artifact ships
// to Nomad. main only parses flags and wires packages together.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type rootFlags struct {
	logFormat string
	logLevel  string
}

func main() {
	var rf rootFlags
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
		migrateCmd(&rf),
		devCmd(&rf),
		globalCmd(&rf),
	)
	root.AddCommand(extraCommands(&rf)...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cellgrid:", err)
		os.Exit(1)
	}
}

func (rf *rootFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(rf.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch rf.logFormat {
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", rf.logFormat)
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l, nil
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "cellgrid", version)
		},
	}
}
