package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	nomad "github.com/hashicorp/nomad/api"
	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/cell"
	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/jobs"
)

func cellCmd(rf *rootFlags) *cobra.Command {
	cfg := cell.DefaultConfig()
	var inf infraFlags
	var globalURL, seedHex, dgsCommand string
	var launcherKind, nomadAddr, nomadRegion, dgsJob, consulAddr string
	cmd := &cobra.Command{
		Use:   "cell",
		Short: "Run one regional cell: matchmaking, DGS fleet, sessions, relay",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			if seedHex != "" {
				if cfg.ConnectKeySeed, err = hex.DecodeString(seedHex); err != nil || len(cfg.ConnectKeySeed) != 32 {
					return fmt.Errorf("--connect-key: want 64 hex characters")
				}
			}
			if cfg.Region == "" {
				cfg.Region = cfg.ID
			}
			globalURL = strings.TrimRight(globalURL, "/")
			cfg.GlobalIssuer, cfg.JWKSURL = globalURL, globalURL+"/.well-known/jwks.json"
			if dgsCommand == "" {
				if dgsCommand, err = os.Executable(); err != nil {
					return err
				}
				cfg.DGS.Args = append([]string{"dgs"}, cfg.DGS.Args...)
			}
			cfg.DGS.Command = dgsCommand
			ctx := cmd.Context()
			in, err := inf.open(ctx, "cellgrid-cell-"+cfg.ID)
			if err != nil {
				return err
			}
			defer in.Close()
			var launcher fleet.Launcher
			switch launcherKind {
			case "local":
				launcher = &fleet.LocalLauncher{Output: os.Stderr}
			case "nomad":
				ncfg := nomad.DefaultConfig()
				ncfg.Address = nomadAddr
				client, err := nomad.NewClient(ncfg)
				if err != nil {
					return fmt.Errorf("nomad client: %w", err)
				}
				nl := &jobs.NomadLauncher{Client: client, Region: nomadRegion, JobID: dgsJob}
				defer nl.Close()
				launcher = nl
			default:
				return fmt.Errorf("--launcher %q: want local or nomad", launcherKind)
			}
			c, err := cell.New(cfg, cell.Deps{DB: in.DB, Redis: in.Redis, NATS: in.NATS, Launcher: launcher, Log: log})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cell %s api %s relay %s\n", cfg.ID, c.URL(), c.RelayAddr())
			if consulAddr == "" {
				return c.Run(ctx)
			}
			reg, err := cellRegistrar(consulAddr, cfg.ID, cfg.Region, c.URL(), c.RelayAddr(), log)
			if err != nil {
				_ = c.Close()
				return err
			}
			return runAll(ctx, c.Run, reg.Run)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "", "cell id, e.g. eu-west-1 (required)")
	f.StringVar(&cfg.Region, "region", "", "region of the cell (default: the id)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "0.0.0.0:8081", "cell API listen address")
	f.StringVar(&cfg.RelayAddr, "relay-addr", "0.0.0.0:7777", "UDP relay and beacon listen address")
	f.StringVar(&cfg.RelayPublicAddr, "relay-public-addr", "", "relay address clients are told to use (default: the listen address)")
	f.StringVar(&globalURL, "global", "http://127.0.0.1:8080", "global layer URL: token issuer and JWKS")
	f.StringVar(&seedHex, "connect-key", os.Getenv("CELLGRID_CONNECT_KEY"), "64 hex chars: Ed25519 seed signing connect tokens; env CELLGRID_CONNECT_KEY")
	f.StringVar(&dgsCommand, "dgs-command", "", "DGS executable (default: this binary with the dgs subcommand)")
	f.StringArrayVar(&cfg.DGS.Args, "dgs-arg", nil, "extra argument for every DGS (repeatable)")
	f.StringVar(&cfg.DGS.Name, "dgs-version", "v1", "DGS version name; changing it rolls the fleet")
	f.IntVar(&cfg.Fleet.Min, "fleet-min", cfg.Fleet.Min, "minimum DGS processes")
	f.IntVar(&cfg.Fleet.Max, "fleet-max", cfg.Fleet.Max, "maximum DGS processes")
	f.IntVar(&cfg.Fleet.Buffer, "fleet-buffer", cfg.Fleet.Buffer, "Ready servers kept warm")
	f.StringVar(&launcherKind, "launcher", "local", "how DGS processes start: local (child processes) or nomad (dispatch of the parameterized DGS job from `cellgrid jobs`)")
	f.StringVar(&nomadAddr, "nomad", envOr("NOMAD_ADDR", "http://127.0.0.1:4646"), "Nomad API address (with --launcher nomad); env NOMAD_ADDR")
	f.StringVar(&nomadRegion, "nomad-region", "", "Nomad region of the DGS job (default: the agent's)")
	f.StringVar(&dgsJob, "dgs-job", jobs.DefaultDGSJobID, "parameterized DGS job dispatched with --launcher nomad (`cell add` registers cellgrid-dgs-<id>)")
	f.StringVar(&consulAddr, "consul", "", "Consul agent host:port: register the cell API and relay with /readyz checks while running")
	inf.register(f, "the cell's ")
	_ = cmd.MarkFlagRequired("id")
	cmd.AddCommand(drainCmds(rf)...)
	cmd.AddCommand(cellAddCmd(rf), cellRemoveCmd(rf))
	return cmd
}
