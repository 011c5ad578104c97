package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	nomad "github.com/hashicorp/nomad/api"
	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/cell"
	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/jobs"
)

// cellSetup is everything `cellgrid cell` resolved from its flags and
// environment before it opens a connection.
type cellSetup struct {
	Cfg                    cell.Config
	Infra                  infraFlags
	Launcher               string // local or nomad
	NomadAddr, NomadRegion string
	DGSJob                 string // the parameterized DGS job (--launcher nomad)
	Consul                 string // Consul agent to register with ("": none)
}

// cellFlags are the raw flags of `cellgrid cell`.
type cellFlags struct {
	cfg                                  cell.Config
	inf                                  infraFlags
	globalURL, seedHex, dgsCmd           string
	launcherKind, nomadAddr, nomadRegion string
	dgsJob, consulAddr                   string
}

func (cf *cellFlags) setup() (cellSetup, error) {
	cfg := cf.cfg
	cfg.DGS.Args = append([]string(nil), cf.cfg.DGS.Args...)
	if cfg.ID == "" {
		return cellSetup{}, fmt.Errorf("--id is required")
	}
	if err := cf.inf.checkDB(); err != nil {
		return cellSetup{}, err
	}
	if cf.seedHex != "" {
		seed, err := hex.DecodeString(cf.seedHex)
		if err != nil || len(seed) != 32 {
			return cellSetup{}, fmt.Errorf("--connect-key: want 64 hex characters")
		}
		cfg.ConnectKeySeed = seed
	}
	if cfg.Region == "" {
		cfg.Region = cfg.ID
	}
	globalURL := strings.TrimRight(cf.globalURL, "/")
	cfg.GlobalIssuer, cfg.JWKSURL = globalURL, globalURL+"/.well-known/jwks.json"
	cfg.DGS.Command = cf.dgsCmd
	if cfg.DGS.Command == "" {
		exe, err := os.Executable()
		if err != nil {
			return cellSetup{}, err
		}
		cfg.DGS.Command = exe
		cfg.DGS.Args = append([]string{"dgs"}, cfg.DGS.Args...)
	}
	switch cf.launcherKind {
	case "local", "nomad":
	default:
		return cellSetup{}, fmt.Errorf("--launcher %q: want local or nomad", cf.launcherKind)
	}
	return cellSetup{Cfg: cfg, Infra: cf.inf, Launcher: cf.launcherKind, NomadAddr: cf.nomadAddr, NomadRegion: cf.nomadRegion,
		DGSJob: cf.dgsJob, Consul: cf.consulAddr}, nil
}

func cellCmd(rf *rootFlags, st starters) *cobra.Command {
	cf := cellFlags{cfg: cell.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "cell",
		Short: "Run one regional cell: matchmaking, DGS fleet, sessions, relay",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger()
			if err != nil {
				return err
			}
			s, err := cf.setup()
			if err != nil {
				return err
			}
			return st.cell(cmd.Context(), cmd.OutOrStdout(), log, s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cf.cfg.ID, "id", "", "cell id, e.g. eu-west-1 (required)")
	f.StringVar(&cf.cfg.Region, "region", "", "region of the cell (default: the id)")
	f.StringVar(&cf.cfg.HTTPAddr, "http-addr", "0.0.0.0:8081", "cell API listen address")
	f.StringVar(&cf.cfg.OpsAddr, "ops-addr", "127.0.0.1:0", "ops listener (/metrics, /readyz with error text): keep it private; port 0 picks a free one, printed at start")
	f.StringVar(&cf.cfg.RelayAddr, "relay-addr", "0.0.0.0:7777", "UDP relay and beacon listen address")
	f.StringVar(&cf.cfg.RelayPublicAddr, "relay-public-addr", "", "relay address clients are told to use (default: the listen address)")
	f.StringVar(&cf.globalURL, "global", "http://127.0.0.1:8080", "global layer URL: token issuer and JWKS")
	f.StringVar(&cf.seedHex, "connect-key", os.Getenv("CELLGRID_CONNECT_KEY"), "64 hex chars: Ed25519 seed signing connect tokens; env CELLGRID_CONNECT_KEY")
	f.StringVar(&cf.dgsCmd, "dgs-command", "", "DGS executable (default: this binary with the dgs subcommand)")
	f.StringArrayVar(&cf.cfg.DGS.Args, "dgs-arg", nil, "extra argument for every DGS (repeatable)")
	f.StringVar(&cf.cfg.DGS.Name, "dgs-version", "v1", "DGS version name; changing it rolls the fleet")
	f.IntVar(&cf.cfg.Fleet.Min, "fleet-min", cf.cfg.Fleet.Min, "minimum DGS processes")
	f.IntVar(&cf.cfg.Fleet.Max, "fleet-max", cf.cfg.Fleet.Max, "maximum DGS processes")
	f.IntVar(&cf.cfg.Fleet.Buffer, "fleet-buffer", cf.cfg.Fleet.Buffer, "Ready servers kept warm")
	f.StringVar(&cf.launcherKind, "launcher", "local", "how DGS processes start: local (child processes) or nomad (dispatch of the parameterized DGS job from `cellgrid jobs`)")
	f.StringVar(&cf.nomadAddr, "nomad", envOr("NOMAD_ADDR", "http://127.0.0.1:4646"), "Nomad API address (with --launcher nomad); env NOMAD_ADDR")
	f.StringVar(&cf.nomadRegion, "nomad-region", "", "Nomad region of the DGS job (default: the agent's)")
	f.StringVar(&cf.dgsJob, "dgs-job", jobs.DefaultDGSJobID, "parameterized DGS job dispatched with --launcher nomad (`cell add` registers cellgrid-dgs-<id>)")
	f.StringVar(&cf.consulAddr, "consul", "", "Consul agent host:port: register the cell API and relay with /readyz checks while running")
	cf.inf.register(f, "the cell's ")
	_ = cmd.MarkFlagRequired("id")
	cmd.AddCommand(drainCmds(rf, st)...)
	cmd.AddCommand(cellAddCmd(rf), cellRemoveCmd(rf))
	return cmd
}

// startCell opens the cell's connections and runs it until ctx ends.
func startCell(ctx context.Context, out io.Writer, log *slog.Logger, s cellSetup) error {
	cfg := s.Cfg
	in, err := s.Infra.open(ctx, "cellgrid-cell-"+cfg.ID)
	if err != nil {
		return err
	}
	defer in.Close()
	var launcher fleet.Launcher
	switch s.Launcher {
	case "nomad":
		ncfg := nomad.DefaultConfig()
		ncfg.Address = s.NomadAddr
		client, err := nomad.NewClient(ncfg)
		if err != nil {
			return fmt.Errorf("nomad client: %w", err)
		}
		nl := &jobs.NomadLauncher{Client: client, Region: s.NomadRegion, JobID: s.DGSJob}
		defer nl.Close()
		launcher = nl
	default:
		launcher = &fleet.LocalLauncher{Output: os.Stderr}
	}
	c, err := cell.New(cfg, cell.Deps{DB: in.DB, Redis: in.Redis, NATS: in.NATS, Launcher: launcher, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cell %s api %s relay %s ops %s\n", cfg.ID, c.URL(), c.RelayAddr(), c.OpsURL())
	if s.Consul == "" {
		return c.Run(ctx)
	}
	reg, err := cellRegistrar(s.Consul, cfg.ID, cfg.Region, c.URL(), c.RelayAddr(), log)
	if err != nil {
		_ = c.Close()
		return err
	}
	return runAll(ctx, c.Run, reg.Run)
}
