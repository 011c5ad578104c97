package dgs

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// RegisterFlags binds cfg to the command-line flags the cell's local
// launcher (and a Nomad task) passes: --cell --id --nats --addr --version,
// plus the match tuning flags.
func (cfg *ServerConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&cfg.Cell, "cell", "", "cell id this server belongs to (required)")
	fs.StringVar(&cfg.ID, "id", "", "server id, unique in the cell (required)")
	fs.StringVar(&cfg.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS URL of the cell")
	fs.StringVar(&cfg.GameListen, "addr", "127.0.0.1:0", "UDP listen address of the game socket (port 0 = free)")
	fs.StringVar(&cfg.AdvertiseHost, "advertise-host", "", "host announced to the cell instead of the listen host")
	fs.StringVar(&cfg.Version, "version", "", "fleet version name reported in heartbeats")
	fs.IntVar(&cfg.TickRate, "tick-rate", 30, "simulation ticks per second")
	fs.IntVar(&cfg.ScoreLimit, "score-limit", 10, "score that ends the match")
	fs.DurationVar(&cfg.TimeLimit, "time-limit", 3*time.Minute, "match duration limit")
	fs.DurationVar(&cfg.WaitForPlayers, "wait-for-players", 30*time.Second, "how long an allocated match waits for its players")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", time.Second, "heartbeat interval")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve /healthz, /readyz and /metrics on this address (empty: off)")
	fs.BoolVar(&cfg.ExitAfterMatch, "exit-after-match", false, "exit after one match instead of returning to Ready")
}

// ParseArgs parses args as RegisterFlags describes and checks that the
// required flags (--cell, --id) are there. Usage goes to stderr.
func ParseArgs(args []string, stderr io.Writer) (ServerConfig, error) {
	fs := flag.NewFlagSet("dgs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg ServerConfig
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.Cell == "" || cfg.ID == "" {
		return cfg, errors.New("--cell and --id are required")
	}
	return cfg, nil
}

// Main parses args as RegisterFlags describes and runs the server until
// SIGINT/SIGTERM. It returns the process exit code. `cellgrid dgs` and
// test binaries that re-execute themselves as a DGS call it.
func Main(args []string, stderr io.Writer) int {
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "dgs:", err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := RunServer(ctx, cfg); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "dgs:", err)
		return 1
	}
	return 0
}
