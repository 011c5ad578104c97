package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/dgs"
	"github.com/cellgrid/cellgrid/jobs"
)

// recorder is a set of starters that only remember what the command
// resolved from its flags and environment: no server starts.
type recorder struct {
	dev     *devRun
	global  *globalSetup
	cell    *cellSetup
	drain   *drainSetup
	migrate *migrateSetup
	bots    *botsRun
	dgsArgs []string
}

func (r *recorder) starters() starters {
	return starters{
		dev: func(_ context.Context, _ io.Writer, _ *slog.Logger, d devRun) error {
			r.dev = &d
			return nil
		},
		global: func(_ context.Context, _ *slog.Logger, s globalSetup) error { r.global = &s; return nil },
		cell: func(_ context.Context, _ io.Writer, _ *slog.Logger, s cellSetup) error {
			r.cell = &s
			return nil
		},
		drain: func(_ context.Context, _ io.Writer, s drainSetup) error { r.drain = &s; return nil },
		migrate: func(_ context.Context, _ io.Writer, _ *slog.Logger, s migrateSetup) error {
			r.migrate = &s
			return nil
		},
		bots: func(_ context.Context, _, _ io.Writer, b botsRun) error { r.bots = &b; return nil },
		dgs:  func(args []string, _ io.Writer) int { r.dgsArgs = args; return 0 },
	}
}

// clearEnv unsets every variable the commands read, for this test only.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"CELLGRID_DB", "CELLGRID_REDIS", "CELLGRID_NATS", "CELLGRID_CONNECT_KEY",
		"CELLGRID_ENCRYPTION_KEY", "NOMAD_ADDR", "NOMAD_TOKEN"} {
		t.Setenv(k, "") // registers the restore
		os.Unsetenv(k)
	}
}

// runRoot executes the real command tree with args (the environment must be set
// before: flag defaults read it) and returns what the starters received and
// the output.
func runRoot(t *testing.T, args ...string) (*recorder, string, error) {
	t.Helper()
	r := &recorder{}
	root := newRoot(r.starters())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return r, out.String(), err
}

const testKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func TestCellDatabaseFromEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("CELLGRID_DB", "postgres://env/db")
	t.Setenv("CELLGRID_REDIS", "redis.env:6379")
	t.Setenv("CELLGRID_NATS", "nats://nats.env:4222")
	r, _, err := runRoot(t, "cell", "--id", "eu-west-1")
	if err != nil {
		t.Fatalf("cell with CELLGRID_DB set: %v", err)
	}
	s := r.cell
	if s.Infra.db != "postgres://env/db" || s.Infra.redis != "redis.env:6379" || s.Infra.nats != "nats://nats.env:4222" {
		t.Fatalf("connections = %q %q %q, want the environment's", s.Infra.db, s.Infra.redis, s.Infra.nats)
	}
	if s.Cfg.ID != "eu-west-1" || s.Cfg.Region != "eu-west-1" || s.Launcher != "local" {
		t.Fatalf("id %q region %q launcher %q", s.Cfg.ID, s.Cfg.Region, s.Launcher)
	}
	if s.Cfg.JWKSURL != "http://127.0.0.1:8080/.well-known/jwks.json" {
		t.Fatalf("JWKS URL %q", s.Cfg.JWKSURL)
	}
	// A flag wins over the environment.
	r, _, err = runRoot(t, "cell", "--id", "x", "--db", "postgres://flag/db")
	if err != nil || r.cell.Infra.db != "postgres://flag/db" {
		t.Fatalf("--db over env: %v %+v", err, r.cell)
	}
}

func TestCellFlags(t *testing.T) {
	clearEnv(t)
	r, _, err := runRoot(t, "cell", "--id", "us-east-1", "--region", "us", "--db", "postgres://d",
		"--global", "https://global.example/", "--connect-key", testKey, "--launcher", "nomad",
		"--nomad", "http://nomad:4646", "--nomad-region", "us", "--dgs-command", "/bin/game",
		"--dgs-arg=--time-limit=20s", "--dgs-version", "v2", "--fleet-min", "3", "--fleet-max", "9",
		"--fleet-buffer", "4", "--http-addr", "127.0.0.1:0", "--relay-addr", "127.0.0.1:0",
		"--relay-public-addr", "203.0.113.1:7777", "--dgs-job", "cellgrid-dgs-us", "--consul", "127.0.0.1:8500")
	if err != nil {
		t.Fatal(err)
	}
	s := r.cell
	c := s.Cfg
	if c.Region != "us" || c.GlobalIssuer != "https://global.example" || len(c.ConnectKeySeed) != 32 ||
		s.Launcher != "nomad" || s.NomadAddr != "http://nomad:4646" || s.NomadRegion != "us" ||
		c.DGS.Command != "/bin/game" || strings.Join(c.DGS.Args, " ") != "--time-limit=20s" || c.DGS.Name != "v2" ||
		c.Fleet.Min != 3 || c.Fleet.Max != 9 || c.Fleet.Buffer != 4 || c.RelayPublicAddr != "203.0.113.1:7777" ||
		s.DGSJob != "cellgrid-dgs-us" || s.Consul != "127.0.0.1:8500" {
		t.Fatalf("setup = %+v", s)
	}
	// Without --dgs-command the cell launches this binary's dgs subcommand.
	r, _, err = runRoot(t, "cell", "--id", "a", "--db", "postgres://d", "--dgs-arg", "--tick-rate=60")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.cell.Cfg.DGS.Args, " "); got != "dgs --tick-rate=60" {
		t.Fatalf("default DGS args %q", got)
	}
}

func TestCellRefusesBadSetup(t *testing.T) {
	clearEnv(t)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no db":        {[]string{"cell", "--id", "a"}, "--db (or CELLGRID_DB) is required"},
		"no id":        {[]string{"cell", "--db", "postgres://d"}, `"id" not set`},
		"bad key":      {[]string{"cell", "--id", "a", "--db", "postgres://d", "--connect-key", "abc"}, "--connect-key"},
		"bad launcher": {[]string{"cell", "--id", "a", "--db", "postgres://d", "--launcher", "k8s"}, `--launcher "k8s"`},
	} {
		t.Run(name, func(t *testing.T) {
			r, _, err := runRoot(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if r.cell != nil {
				t.Fatal("the cell started")
			}
		})
	}
}

func TestGlobalFlagsAndEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("CELLGRID_DB", "postgres://env/db")
	t.Setenv("CELLGRID_ENCRYPTION_KEY", testKey)
	r, _, err := runRoot(t, "global", "--addr", "127.0.0.1:0", "--public-url", "https://g.example",
		"--cells", "eu,us", "--oidc-issuer", "https://idp.example", "--oidc-client-id", "game")
	if err != nil {
		t.Fatalf("global with CELLGRID_DB and CELLGRID_ENCRYPTION_KEY set: %v", err)
	}
	s := r.global
	if s.Infra.db != "postgres://env/db" || s.Cfg.PublicURL != "https://g.example" || strings.Join(s.Cfg.Cells, ",") != "eu,us" ||
		len(s.Cfg.Auth.EncryptionKey) != 32 || len(s.Cfg.Auth.OIDCIssuers) != 1 || s.Cfg.Auth.AllowDeviceLogin {
		t.Fatalf("setup = %+v", s)
	}

	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"no db":       {map[string]string{"CELLGRID_ENCRYPTION_KEY": testKey}, nil, "--db (or CELLGRID_DB) is required"},
		"no key":      {map[string]string{"CELLGRID_DB": "postgres://d"}, nil, "--encryption-key"},
		"short key":   {map[string]string{"CELLGRID_DB": "postgres://d"}, []string{"--encryption-key", "abcd"}, "64 hex"},
		"oidc pairs":  {map[string]string{"CELLGRID_DB": "postgres://d", "CELLGRID_ENCRYPTION_KEY": testKey}, []string{"--oidc-issuer", "https://a"}, "--oidc-client-id 0 times"},
		"auth config": {map[string]string{"CELLGRID_DB": "postgres://d", "CELLGRID_ENCRYPTION_KEY": testKey}, []string{"--auth-config", "/nonexistent.json"}, "--auth-config"},
	} {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r, _, err := runRoot(t, append([]string{"global"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if r.global != nil {
				t.Fatal("the global layer started")
			}
		})
	}
}

func TestMigrateDatabaseFromEnvironment(t *testing.T) {
	clearEnv(t)
	if _, _, err := runRoot(t, "migrate"); err == nil || !strings.Contains(err.Error(), "CELLGRID_DB") {
		t.Fatalf("migrate without a database: %v", err)
	}
	t.Setenv("CELLGRID_DB", "postgres://env/db")
	r, _, err := runRoot(t, "migrate", "--crdb-primary-region", "eu", "--crdb-region", "us", "--crdb-survive-region")
	if err != nil {
		t.Fatal(err)
	}
	if m := r.migrate; m.Infra.db != "postgres://env/db" || m.MultiRegion.PrimaryRegion != "eu" ||
		strings.Join(m.MultiRegion.Regions, ",") != "us" || !m.MultiRegion.SurviveRegion || m.MultiRegion.Database != "cellgrid" {
		t.Fatalf("setup = %+v", m)
	}
}

func TestDevFlags(t *testing.T) {
	clearEnv(t)
	r, _, err := runRoot(t, "dev", "--dgs-arg=--time-limit=20s", "--cells", "a,b", "--data", "/tmp/x",
		"--global-addr", "127.0.0.1:0", "--cell-base-port", "0")
	if err != nil {
		t.Fatal(err)
	}
	if r.dev.Nomad {
		t.Fatal("dev --nomad without the flag")
	}
	c := r.dev.Cfg
	if strings.Join(c.Cells, ",") != "a,b" || c.DataDir != "/tmp/x" || c.GlobalAddr != "127.0.0.1:0" ||
		c.CellBasePort != 0 || strings.Join(c.DGSArgs, " ") != "--time-limit=20s" ||
		len(c.DGSCommand) != 2 || c.DGSCommand[1] != "dgs" || !c.Auth.AllowDeviceLogin {
		t.Fatalf("config = %+v", c)
	}
	// The README's defaults: three cells on 8081…, global on 8080.
	r, _, err = runRoot(t, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if d := r.dev.Cfg; len(d.Cells) != len(devstack.DefaultCells) || d.GlobalAddr != "127.0.0.1:8080" || d.CellBasePort != 8081 {
		t.Fatalf("defaults = %+v", r.dev)
	}
	if r, _, err = runRoot(t, "dev", "--nomad"); err != nil || !r.dev.Nomad || r.dev.Exe == "" {
		t.Fatalf("dev --nomad: %+v %v", r.dev, err)
	}
	if _, _, err := runRoot(t, "dev", "--oidc-client-id", "x"); err == nil {
		t.Fatal("an unpaired --oidc-client-id was accepted")
	}
}

func TestDrainFlags(t *testing.T) {
	clearEnv(t)
	t.Setenv("CELLGRID_NATS", "nats://ops:4222")
	for _, verb := range []string{"drain", "undrain"} {
		r, _, err := runRoot(t, "cell", verb, "--id", "eu-west-1")
		if err != nil {
			t.Fatal(err)
		}
		if d := r.drain; d.Verb != verb || d.ID != "eu-west-1" || d.Infra.nats != "nats://ops:4222" {
			t.Fatalf("%s setup = %+v", verb, r.drain)
		}
		// The parent's required --db must not leak into the ops verbs.
		if r.cell != nil {
			t.Fatalf("%s started a cell", verb)
		}
		if _, _, err := runRoot(t, "cell", verb); err == nil || !strings.Contains(err.Error(), `"id" not set`) {
			t.Fatalf("%s without --id: %v", verb, err)
		}
	}
}

func TestBotsFlags(t *testing.T) {
	clearEnv(t)
	r, _, err := runRoot(t, "bots", "--players", "8", "--cell", "eu-west-1", "--cheaters", "2",
		"--global", "http://g:8080", "--mode", "duel", "--timeout", "30s", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	if c := r.bots.Cfg; c.Players != 8 || c.Cell != "eu-west-1" || c.Cheaters != 2 || c.GlobalURL != "http://g:8080" ||
		c.Mode != "duel" || c.MatchTimeout.Seconds() != 30 {
		t.Fatalf("config = %+v", c)
	}
	if _, _, err := runRoot(t, "bots", "--players", "0"); err == nil {
		t.Fatal("--players 0 accepted")
	}
}

func TestDGSPassesItsArgumentsThrough(t *testing.T) {
	clearEnv(t)
	args := []string{"--cell", "eu", "--id", "d1", "--nats", "nats://n:4222", "--addr", "127.0.0.1:0", "--version", "v1", "--time-limit=20s"}
	r, _, err := runRoot(t, append([]string{"dgs"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.dgsArgs, " ") != strings.Join(args, " ") {
		t.Fatalf("dgs got %q, want %q", r.dgsArgs, args)
	}
	// The root's own flags, before the subcommand, are not passed on.
	r, _, err = runRoot(t, append([]string{"--log-level", "debug", "--log-format=json", "dgs"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.dgsArgs, " ") != strings.Join(args, " ") {
		t.Fatalf("dgs after root flags got %q, want %q", r.dgsArgs, args)
	}
	cfg, err := dgs.ParseArgs(r.dgsArgs, io.Discard)
	if err != nil || cfg.Cell != "eu" || cfg.ID != "d1" || cfg.TimeLimit.Seconds() != 20 {
		t.Fatalf("ParseArgs = %+v, %v", cfg, err)
	}
	if _, err := dgs.ParseArgs([]string{"--nats", "nats://n"}, io.Discard); err == nil {
		t.Fatal("a DGS without --cell/--id parsed")
	}
}

// nomadVars stands in for the values Nomad interpolates into a task.
var nomadVars = regexp.MustCompile(`\$\{(NOMAD_[A-Za-z_]+)\}`)

func interpolate(s string) string {
	return nomadVars.ReplaceAllStringFunc(s, func(m string) string {
		switch name := nomadVars.FindStringSubmatch(m)[1]; {
		case strings.HasPrefix(name, "NOMAD_PORT_"):
			return "31000"
		case strings.HasPrefix(name, "NOMAD_ADDR_"):
			return "10.0.0.5:31001"
		case strings.HasPrefix(name, "NOMAD_IP_"):
			return "10.0.0.5"
		default:
			return "meta-" + strings.ToLower(strings.TrimPrefix(name, "NOMAD_META_"))
		}
	})
}

// renderTask runs `cellgrid jobs render` and returns the only task of the
// job: its arguments (after the binary) and environment, interpolated.
func renderTask(t *testing.T, args ...string) ([]string, map[string]string) {
	t.Helper()
	_, out, err := runRoot(t, append([]string{"jobs", "render", "--region", "eu", "--binary", "/usr/local/bin/cellgrid"}, args...)...)
	if err != nil {
		t.Fatalf("jobs render: %v", err)
	}
	var doc struct{ Job *api.Job }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("render output is not a job: %v\n%s", err, out)
	}
	return taskOf(t, doc.Job)
}

// taskOf returns the only task of j: its arguments (after the binary) and
// environment, interpolated.
func taskOf(t *testing.T, j *api.Job) ([]string, map[string]string) {
	t.Helper()
	if len(j.TaskGroups) != 1 || len(j.TaskGroups[0].Tasks) != 1 {
		t.Fatalf("want one task, got %+v", j.TaskGroups)
	}
	task := j.TaskGroups[0].Tasks[0]
	var targs []string
	switch raw := task.Config["args"].(type) {
	case []string: // built in this process
		for _, a := range raw {
			targs = append(targs, interpolate(a))
		}
	case []any: // decoded from JSON
		for _, a := range raw {
			targs = append(targs, interpolate(a.(string)))
		}
	}
	if len(targs) == 0 {
		t.Fatalf("task %s has no arguments: %+v", task.Name, task.Config)
	}
	env := map[string]string{}
	for k, v := range task.Env {
		env[k] = interpolate(v)
	}
	return targs, env
}

// The Nomad jobs pass the database, Redis and NATS through the environment;
// the command they start must accept that (a cobra-required --db did not).
func TestRenderedCellJobStartsTheCellCommand(t *testing.T) {
	clearEnv(t)
	args, env := renderTask(t, "--kind", "cell", "--cell", "eu-west-1", "--db", "postgres://job/db",
		"--redis", "redis.job:6379", "--nats", "nats://nats.job:4222", "--global", "http://global.job:8080")
	if len(args) == 0 || args[0] != "cell" {
		t.Fatalf("cell job runs %q", args)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	r, _, err := runRoot(t, args...)
	if err != nil {
		t.Fatalf("cellgrid %s (env %v): %v", strings.Join(args, " "), env, err)
	}
	s := r.cell
	if s.Infra.db != "postgres://job/db" || s.Infra.redis != "redis.job:6379" || s.Infra.nats != "nats://nats.job:4222" ||
		s.Cfg.ID != "eu-west-1" || s.Cfg.GlobalIssuer != "http://global.job:8080" || s.Cfg.HTTPAddr != "10.0.0.5:31001" ||
		s.Launcher != "local" {
		t.Fatalf("the cell job's command resolved to %+v", s)
	}

	// A cell job with the Nomad launcher starts a cell that dispatches
	// its DGSs through Nomad.
	j, err := jobs.CellJob(jobs.CellSpec{Common: jobs.Common{Region: "eu", Binary: jobs.Binary{Source: "/usr/local/bin/cellgrid"}},
		CellID: "eu-west-1", DBURL: "postgres://job/db", NATSURL: "nats://nats.job:4222",
		Launcher: "nomad", NomadAddr: "http://nomad.job:4646"})
	if err != nil {
		t.Fatal(err)
	}
	args, env = taskOf(t, j)
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	r, _, err = runRoot(t, args...)
	if err != nil {
		t.Fatalf("cellgrid %s (env %v): %v", strings.Join(args, " "), env, err)
	}
	if s := r.cell; s.Launcher != "nomad" || s.NomadAddr != "http://nomad.job:4646" || s.DGSJob != jobs.DGSJobID("eu-west-1") ||
		s.Infra.db != "postgres://job/db" {
		t.Fatalf("the Nomad-launcher cell job's command resolved to launcher %q nomad %q job %q db %q",
			s.Launcher, s.NomadAddr, s.DGSJob, s.Infra.db)
	}
}

func TestRenderedGlobalJobStartsTheGlobalCommand(t *testing.T) {
	clearEnv(t)
	args, env := renderTask(t, "--kind", "global", "--db", "postgres://job/db", "--redis", "redis.job:6379",
		"--nats", "nats://nats.job:4222", "--cells", "eu-west-1,us-east-1", "--public-url", "https://g.example")
	if len(args) == 0 || args[0] != "global" {
		t.Fatalf("global job runs %q", args)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	// The operator supplies the sealing key (a Nomad variable or template),
	// never the job definition.
	t.Setenv("CELLGRID_ENCRYPTION_KEY", testKey)
	r, _, err := runRoot(t, args...)
	if err != nil {
		t.Fatalf("cellgrid %s (env %v): %v", strings.Join(args, " "), env, err)
	}
	if s := r.global; s.Infra.db != "postgres://job/db" || s.Infra.nats != "nats://nats.job:4222" ||
		strings.Join(s.Cfg.Cells, ",") != "eu-west-1,us-east-1" || s.Cfg.PublicURL != "https://g.example" {
		t.Fatalf("the global job's command resolved to %+v", s)
	}
}

func TestRenderedDGSJobStartsTheDGSCommand(t *testing.T) {
	clearEnv(t)
	args, _ := renderTask(t, "--kind", "dgs", "--nats", "nats://nats.job:4222")
	if len(args) == 0 || args[0] != "dgs" {
		t.Fatalf("dgs job runs %q", args)
	}
	r, _, err := runRoot(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := dgs.ParseArgs(r.dgsArgs, io.Discard)
	if err != nil {
		t.Fatalf("the DGS job's arguments %q: %v", r.dgsArgs, err)
	}
	if cfg.NATSURL != "nats://nats.job:4222" || cfg.Cell != "meta-cell" || cfg.ID != "meta-dgs_id" || cfg.AdvertiseHost != "10.0.0.5" {
		t.Fatalf("the DGS job's command resolved to %+v", cfg)
	}
}

func TestJobsRenderRefusesBadFlags(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"jobs", "render", "--kind", "cell", "--binary", "/b"},                                     // no region
		{"jobs", "render", "--kind", "nope", "--region", "eu", "--binary", "/b"},                   // bad kind
		{"jobs", "render", "--kind", "cell", "--region", "eu", "--region", "us", "--binary", "/b"}, // two regions
	} {
		if _, _, err := runRoot(t, args...); err == nil {
			t.Fatalf("%q accepted", args)
		}
	}
}
