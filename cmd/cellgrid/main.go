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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(defaultStarters()).ExecuteContext(ctx); err != nil {
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
