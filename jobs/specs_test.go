package jobs

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
)

func common(region string) Common {
	return Common{Region: region, Datacenters: []string{"eu-west-1a"}, Binary: Binary{Source: "https://example.test/cellgrid", Checksum: "sha256:00"}}
}

// roundTrip canonicalizes j, marshals it as `nomad job run -json` reads it
// ({"Job": …}) and decodes it back into an api.Job.
func roundTrip(t *testing.T, j *api.Job) *api.Job {
	t.Helper()
	j.Canonicalize()
	b, err := json.Marshal(map[string]*api.Job{"Job": j})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ Job *api.Job }
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Job == nil || *back.Job.ID != *j.ID {
		t.Fatalf("round trip lost the job: %s", b)
	}
	b2, _ := json.Marshal(map[string]*api.Job{"Job": back.Job})
	if string(b) != string(b2) {
		t.Fatalf("JSON not stable through api.Job:\n%s\n%s", b, b2)
	}
	return back.Job
}

func argAfter(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

func TestDGSJob(t *testing.T) {
	j, err := DGSJob(DGSSpec{Common: common("eu"), NATSURL: "nats://nats.service.consul:4222", ExtraArgs: []string{"--tick-rate", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	j = roundTrip(t, j)
	if *j.Type != "batch" || *j.ID != DefaultDGSJobID || *j.Region != "eu" {
		t.Fatalf("type/id/region = %s/%s/%s", *j.Type, *j.ID, *j.Region)
	}
	if j.Multiregion != nil {
		t.Fatal("Multiregion is Enterprise-only")
	}
	p := j.ParameterizedJob
	if p == nil {
		t.Fatal("not parameterized")
	}
	slices.Sort(p.MetaRequired)
	if !slices.Equal(p.MetaRequired, []string{"cell", "dgs_id", "version"}) {
		t.Fatalf("meta_required = %v", p.MetaRequired)
	}
	tg := j.TaskGroups[0]
	n := tg.Networks[0]
	if len(n.DynamicPorts) != 1 || n.DynamicPorts[0].Label != "game" || len(n.ReservedPorts) != 0 {
		t.Fatalf("ports = %+v / %+v", n.DynamicPorts, n.ReservedPorts)
	}
	task := tg.Tasks[0]
	if task.Driver != "raw_exec" {
		t.Fatalf("driver %s", task.Driver)
	}
	if task.Config["command"] != "local/cellgrid" || len(task.Artifacts) != 1 || *task.Artifacts[0].RelativeDest != "local/cellgrid" {
		t.Fatalf("command %v artifacts %+v", task.Config["command"], task.Artifacts)
	}
	var args []string
	for _, a := range task.Config["args"].([]any) {
		args = append(args, a.(string))
	}
	if args[0] != "dgs" || args[1] != "--tick-rate" {
		t.Fatalf("args %v", args)
	}
	for flag, want := range map[string]string{
		"--cell": "${NOMAD_META_cell}", "--id": "${NOMAD_META_dgs_id}", "--version": "${NOMAD_META_version}",
		"--addr": "0.0.0.0:${NOMAD_PORT_game}", "--nats": "nats://nats.service.consul:4222",
	} {
		if got := argAfter(args, flag); got != want {
			t.Errorf("%s = %q, want %q", flag, got, want)
		}
	}
	if *task.RestartPolicy.Attempts != 0 || *tg.ReschedulePolicy.Attempts != 0 || *tg.ReschedulePolicy.Unlimited {
		t.Error("a DGS must not be restarted or rescheduled by Nomad")
	}
}

func TestCellJob(t *testing.T) {
	j, err := CellJob(CellSpec{Common: common("eu"), CellID: "eu-west-1", DBURL: "postgres://db/x", RedisAddr: "redis:6379",
		NATSURL: "nats://n:4222", GlobalURL: "https://global.test", RelayPort: 7777, FleetMax: 20})
	if err != nil {
		t.Fatal(err)
	}
	j = roundTrip(t, j)
	if *j.Type != "service" || *j.ID != "cellgrid-cell-eu-west-1" || *j.Region != "eu" || j.ParameterizedJob != nil {
		t.Fatalf("job %s %s %s", *j.Type, *j.ID, *j.Region)
	}
	if !slices.Equal(j.Datacenters, []string{"eu-west-1a"}) {
		t.Fatalf("datacenters %v", j.Datacenters)
	}
	n := j.TaskGroups[0].Networks[0]
	if len(n.DynamicPorts) != 1 || n.DynamicPorts[0].Label != "http" {
		t.Fatalf("dynamic ports %+v", n.DynamicPorts)
	}
	if len(n.ReservedPorts) != 1 || n.ReservedPorts[0].Label != "relay" || n.ReservedPorts[0].Value != 7777 {
		t.Fatalf("reserved ports %+v", n.ReservedPorts)
	}
	task := j.TaskGroups[0].Tasks[0]
	if task.Env["CELLGRID_DB"] != "postgres://db/x" || task.Env["CELLGRID_REDIS"] != "redis:6379" || task.Env["CELLGRID_NATS"] != "nats://n:4222" {
		t.Fatalf("env %v", task.Env)
	}
	var args []string
	for _, a := range task.Config["args"].([]any) {
		args = append(args, a.(string))
	}
	for flag, want := range map[string]string{
		"--id": "eu-west-1", "--region": "eu", "--http-addr": "${NOMAD_ADDR_http}",
		"--relay-addr": "0.0.0.0:${NOMAD_PORT_relay}", "--global": "https://global.test", "--fleet-max": "20",
	} {
		if got := argAfter(args, flag); got != want {
			t.Errorf("%s = %q, want %q", flag, got, want)
		}
	}
	// The DB URL carries a password: env, not argv (`cellgrid cell` takes
	// CELLGRID_DB in place of --db; the real-agent tests run it so).
	if args[0] != "cell" || slices.Contains(args, "--db") || slices.Contains(args, "--launcher") || slices.Contains(args, "--consul") {
		t.Errorf("args %v", args)
	}
	if len(task.Services) != 1 {
		t.Fatal("no service")
	}
	s := task.Services[0]
	if s.PortLabel != "http" || len(s.Checks) != 1 || s.Checks[0].Type != "http" || s.Checks[0].Path != "/readyz" {
		t.Fatalf("service %+v checks %+v", s, s.Checks)
	}
}

func TestGlobalJob(t *testing.T) {
	j, err := GlobalJob(GlobalSpec{Common: Common{Region: "us", Binary: Binary{Source: "/opt/cellgrid/bin/cellgrid"}, Driver: "exec"},
		DBURL: "postgres://db/g", Cells: []string{"eu-west-1", "us-east-1"}, HTTPPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	j = roundTrip(t, j)
	task := j.TaskGroups[0].Tasks[0]
	if task.Driver != "exec" || task.Config["command"] != "/opt/cellgrid/bin/cellgrid" || len(task.Artifacts) != 0 {
		t.Fatalf("task %+v", task)
	}
	var args []string
	for _, a := range task.Config["args"].([]any) {
		args = append(args, a.(string))
	}
	if args[0] != "global" || argAfter(args, "--cells") != "eu-west-1,us-east-1" || argAfter(args, "--addr") != "${NOMAD_ADDR_http}" {
		t.Fatalf("args %v", args)
	}
	if p := j.TaskGroups[0].Networks[0].ReservedPorts; len(p) != 1 || p[0].Value != 8080 {
		t.Fatalf("ports %+v", p)
	}
	if c := task.Services[0].Checks[0]; c.Path != "/readyz" {
		t.Fatalf("check %+v", c)
	}
}

// TestCellJobNomadLauncherAndConsul: a cell deployed by Nomad can launch
// its DGSs through Nomad (its own DGS job) and register itself in Consul;
// then the job declares no Nomad service (no double registration).
func TestCellJobNomadLauncherAndConsul(t *testing.T) {
	j, err := CellJob(CellSpec{Common: common("eu"), CellID: "eu-west-1", DBURL: "postgres://db/x",
		Launcher: "nomad", NomadAddr: "http://127.0.0.1:4646", NomadRegion: "eu", ConsulAddr: "127.0.0.1:8500",
		DGSArgs: []string{"--time-limit=5s"}, FleetBuffer: 3})
	if err != nil {
		t.Fatal(err)
	}
	j = roundTrip(t, j)
	task := j.TaskGroups[0].Tasks[0]
	var args []string
	for _, a := range task.Config["args"].([]any) {
		args = append(args, a.(string))
	}
	for flag, want := range map[string]string{
		"--launcher": "nomad", "--nomad": "http://127.0.0.1:4646", "--nomad-region": "eu",
		"--dgs-job": "cellgrid-dgs-eu-west-1", "--consul": "127.0.0.1:8500", "--dgs-arg": "--time-limit=5s", "--fleet-buffer": "3",
	} {
		if got := argAfter(args, flag); got != want {
			t.Errorf("%s = %q, want %q (args %v)", flag, got, want, args)
		}
	}
	if len(task.Services) != 0 {
		t.Errorf("self-registering cell also declares Nomad services %+v", task.Services)
	}
	if _, err := CellJob(CellSpec{Common: common("eu"), CellID: "c", DBURL: "x", Launcher: "nomad"}); err == nil {
		t.Error("nomad launcher without a Nomad address accepted")
	}
	if _, err := CellJob(CellSpec{Common: common("eu"), CellID: "c", DBURL: "x", Launcher: "k8s"}); err == nil {
		t.Error("unknown launcher accepted")
	}
}

func TestSpecValidation(t *testing.T) {
	if _, err := DGSJob(DGSSpec{Common: Common{Binary: Binary{Source: "/x"}}, NATSURL: "nats://x"}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("missing region: %v", err)
	}
	if _, err := CellJob(CellSpec{Common: Common{Region: "eu", Binary: Binary{Source: "relative/path"}}, CellID: "c", DBURL: "x"}); err == nil {
		t.Fatal("relative binary path accepted")
	}
	if _, err := CellJob(CellSpec{Common: common("eu"), DBURL: "x"}); err == nil {
		t.Fatal("missing cell id accepted")
	}
}
