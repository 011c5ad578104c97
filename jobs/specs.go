package jobs

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Meta keys a dispatch of the DGS job must carry.
const (
	MetaCell    = "cell"
	MetaDGSID   = "dgs_id"
	MetaVersion = "version"
)

// DefaultDGSJobID is the ID of the parameterized DGS job when DGSSpec.JobID
// is empty.
const DefaultDGSJobID = "cellgrid-dgs"

// Binary says where a task finds the cellgrid executable.
type Binary struct {
	// Source is a URL (anything with "://", fetched with a Nomad artifact
	// into local/cellgrid) or an absolute path present on every client.
	Source string
	// Checksum is an optional go-getter checksum ("sha256:…") for a URL.
	Checksum string
}

// Resources a task asks for. Zero values take the defaults noted below.
type Resources struct {
	CPU      int // MHz
	MemoryMB int
}

// Common fields of every spec.
type Common struct {
	Region      string   // Nomad region; the job is registered there
	Datacenters []string // default ["dc1"]
	Namespace   string   // optional
	Driver      string   // "raw_exec" (default) or "exec"
	Binary      Binary
	Resources   Resources
	// Env is added to the task's environment (e.g. CELLGRID_CONNECT_KEY).
	// Job definitions are readable by anyone with read-job: prefer Nomad
	// Variables or Vault templates for real secrets.
	Env map[string]string
}

// CellSpec describes one regional cell.
type CellSpec struct {
	Common
	CellID string // required; also the job ID suffix
	// CellRegion is the region the cell reports (--region); default the
	// Nomad region.
	CellRegion string
	DBURL      string // CELLGRID_DB (env, not argv: it carries a password)
	RedisAddr  string // CELLGRID_REDIS
	NATSURL    string // CELLGRID_NATS
	GlobalURL  string // --global
	// HTTPPort and RelayPort are static host ports; 0 means dynamic. The
	// relay is what clients dial over UDP, so production wants it static.
	HTTPPort  int
	RelayPort int
	// RelayPublicAddr is told to clients; default ${NOMAD_ADDR_relay}.
	RelayPublicAddr string
	DGSVersion      string   // --dgs-version, default "v1"
	DGSArgs         []string // --dgs-arg each (local launcher only)
	FleetMin        int      // --fleet-min when > 0
	FleetMax        int      // --fleet-max when > 0
	FleetBuffer     int      // --fleet-buffer when > 0
	// Launcher is how the cell starts its DGSs: "local" (default: child
	// processes of the cell task) or "nomad" (dispatches of the cell's
	// parameterized DGS job, DGSJobID(CellID), through NomadAddr).
	Launcher    string
	NomadAddr   string // --nomad; required with Launcher "nomad"
	NomadRegion string // --nomad-region (default: the agent's)
	// ConsulAddr, when set, makes the cell register its API and relay in
	// Consul itself (--consul) with HTTP checks on /readyz; the job then
	// declares no Nomad service, so nothing is registered twice. Empty:
	// the job declares the service and Nomad's Consul integration
	// registers it.
	ConsulAddr  string
	ServiceName string // Consul service, default "cellgrid-cell"
	Count       int    // default 1
}

// GlobalSpec describes the global layer.
type GlobalSpec struct {
	Common
	DBURL       string
	RedisAddr   string
	NATSURL     string
	PublicURL   string
	Cells       []string
	HTTPPort    int    // 0 = dynamic
	ServiceName string // default "cellgrid-global"
	Count       int    // default 1
	JobID       string // default "cellgrid-global"
	ExtraArgs   []string
	// ConsulAddr: as CellSpec.ConsulAddr (--consul: self-registration and
	// topology from the Consul catalog).
	ConsulAddr string
}

// DGSSpec describes the parameterized DGS job of one region.
type DGSSpec struct {
	Common
	JobID     string   // default DefaultDGSJobID
	NATSURL   string   // --nats (the region's NATS)
	ExtraArgs []string // appended before the per-dispatch flags (e.g. --tick-rate 60)
	// GamePort is a static port for the game socket; 0 (default) is dynamic,
	// which is what a fleet of many DGS per node needs.
	GamePort int
}

func (c *Common) defaults(cpu, mem int) {
	if len(c.Datacenters) == 0 {
		c.Datacenters = []string{"dc1"}
	}
	if c.Driver == "" {
		c.Driver = "raw_exec"
	}
	if c.Resources.CPU == 0 {
		c.Resources.CPU = cpu
	}
	if c.Resources.MemoryMB == 0 {
		c.Resources.MemoryMB = mem
	}
}

func (c *Common) validate() error {
	if c.Region == "" {
		return errors.New("jobs: region is required")
	}
	if c.Binary.Source == "" {
		return errors.New("jobs: binary source (URL or path) is required")
	}
	if !isURL(c.Binary.Source) && !strings.HasPrefix(c.Binary.Source, "/") {
		return fmt.Errorf("jobs: binary %q: want a URL or an absolute path", c.Binary.Source)
	}
	switch c.Driver {
	case "raw_exec", "exec":
	default:
		return fmt.Errorf("jobs: driver %q: want raw_exec or exec", c.Driver)
	}
	return nil
}

func isURL(s string) bool { return strings.Contains(s, "://") }

// task builds the task running `cellgrid <args…>` with c's binary.
func (c *Common) task(name string, args []string, env map[string]string) *api.Task {
	t := api.NewTask(name, c.Driver)
	command := c.Binary.Source
	if isURL(c.Binary.Source) {
		command = "local/cellgrid"
		art := &api.TaskArtifact{
			GetterSource: new(c.Binary.Source),
			GetterMode:   new("file"),
			RelativeDest: new("local/cellgrid"),
		}
		if c.Binary.Checksum != "" {
			art.GetterOptions = map[string]string{"checksum": c.Binary.Checksum}
		}
		t.Artifacts = []*api.TaskArtifact{art}
	}
	t.Config = map[string]any{"command": command, "args": args}
	merged := map[string]string{}
	for k, v := range c.Env {
		merged[k] = v
	}
	for k, v := range env {
		if v != "" {
			merged[k] = v
		}
	}
	if len(merged) > 0 {
		t.Env = merged
	}
	t.Resources = &api.Resources{CPU: new(c.Resources.CPU), MemoryMB: new(c.Resources.MemoryMB)}
	t.KillTimeout = new(15 * time.Second)
	t.KillSignal = "SIGTERM"
	return t
}

func (c *Common) job(j *api.Job) *api.Job {
	j.Datacenters = append([]string(nil), c.Datacenters...)
	if c.Namespace != "" {
		j.Namespace = new(c.Namespace)
	}
	return j
}

func port(label string, static int) api.Port {
	if static > 0 {
		return api.Port{Label: label, Value: static}
	}
	return api.Port{Label: label}
}

func network(ports ...api.Port) []*api.NetworkResource {
	n := &api.NetworkResource{Mode: "host"}
	for _, p := range ports {
		if p.Value > 0 {
			n.ReservedPorts = append(n.ReservedPorts, p)
		} else {
			n.DynamicPorts = append(n.DynamicPorts, p)
		}
	}
	return []*api.NetworkResource{n}
}

func httpService(name, portLabel string, tags []string, meta map[string]string) *api.Service {
	return &api.Service{
		Name:      name,
		PortLabel: portLabel,
		Provider:  api.ServiceProviderConsul,
		Tags:      tags,
		Meta:      meta,
		Checks: []api.ServiceCheck{{
			Name:     name + "-readyz",
			Type:     "http",
			Path:     "/readyz",
			Protocol: "http",
			// The check inherits the service's port label.
			Interval: 10 * time.Second,
			Timeout:  3 * time.Second,
		}},
	}
}

// CellJobID is the job ID of a cell.
func CellJobID(cellID string) string { return "cellgrid-cell-" + cellID }

// DGSJobID is the ID of a cell's parameterized DGS job: one per cell,
// because the job fixes the NATS URL of the cell's own cluster.
func DGSJobID(cellID string) string { return DefaultDGSJobID + "-" + cellID }

// CellJob returns the service job of one cell.
func CellJob(s CellSpec) (*api.Job, error) {
	s.defaults(500, 512)
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.CellID == "" {
		return nil, errors.New("jobs: cell id is required")
	}
	if s.DBURL == "" {
		return nil, errors.New("jobs: cell needs a database URL")
	}
	if s.ServiceName == "" {
		s.ServiceName = "cellgrid-cell"
	}
	if s.Count <= 0 {
		s.Count = 1
	}
	if s.CellRegion == "" {
		s.CellRegion = s.Region
	}
	relayPublic := s.RelayPublicAddr
	if relayPublic == "" {
		relayPublic = "${NOMAD_ADDR_relay}"
	}
	// The API binds the address Nomad allocated (its URL is what the cell
	// announces), the relay every interface of the port.
	args := []string{"cell",
		"--id", s.CellID,
		"--region", s.CellRegion,
		"--http-addr", "${NOMAD_ADDR_http}",
		"--relay-addr", "0.0.0.0:${NOMAD_PORT_relay}",
		"--relay-public-addr", relayPublic,
	}
	if s.GlobalURL != "" {
		args = append(args, "--global", s.GlobalURL)
	}
	if s.DGSVersion != "" {
		args = append(args, "--dgs-version", s.DGSVersion)
	}
	for _, a := range s.DGSArgs {
		args = append(args, "--dgs-arg", a)
	}
	for _, f := range []struct {
		flag string
		n    int
	}{{"--fleet-min", s.FleetMin}, {"--fleet-max", s.FleetMax}, {"--fleet-buffer", s.FleetBuffer}} {
		if f.n > 0 {
			args = append(args, f.flag, fmt.Sprint(f.n))
		}
	}
	switch s.Launcher {
	case "", "local":
	case "nomad":
		if s.NomadAddr == "" {
			return nil, errors.New("jobs: a cell with the nomad launcher needs a Nomad address")
		}
		args = append(args, "--launcher", "nomad", "--nomad", s.NomadAddr, "--dgs-job", DGSJobID(s.CellID))
		if s.NomadRegion != "" {
			args = append(args, "--nomad-region", s.NomadRegion)
		}
	default:
		return nil, fmt.Errorf("jobs: launcher %q: want local or nomad", s.Launcher)
	}
	if s.ConsulAddr != "" {
		args = append(args, "--consul", s.ConsulAddr)
	}
	t := s.task("cell", args, map[string]string{
		"CELLGRID_DB": s.DBURL, "CELLGRID_REDIS": s.RedisAddr, "CELLGRID_NATS": s.NATSURL,
	})
	if s.ConsulAddr == "" {
		t.Services = []*api.Service{httpService(s.ServiceName, "http",
			[]string{"cell", "cell-" + s.CellID}, map[string]string{"cell": s.CellID, "region": s.Region})}
	}

	tg := api.NewTaskGroup("cell", s.Count)
	tg.Networks = network(port("http", s.HTTPPort), port("relay", s.RelayPort))
	tg.Tasks = []*api.Task{t}
	j := s.job(api.NewServiceJob(CellJobID(s.CellID), CellJobID(s.CellID), s.Region, 70))
	j.Meta = map[string]string{"cell": s.CellID}
	j.TaskGroups = []*api.TaskGroup{tg}
	return j, nil
}

// GlobalJob returns the service job of the global layer in one region.
func GlobalJob(s GlobalSpec) (*api.Job, error) {
	s.defaults(500, 512)
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.DBURL == "" {
		return nil, errors.New("jobs: global needs a database URL")
	}
	if s.ServiceName == "" {
		s.ServiceName = "cellgrid-global"
	}
	if s.JobID == "" {
		s.JobID = "cellgrid-global"
	}
	if s.Count <= 0 {
		s.Count = 1
	}
	args := []string{"global", "--addr", "${NOMAD_ADDR_http}"}
	if s.PublicURL != "" {
		args = append(args, "--public-url", s.PublicURL)
	}
	if len(s.Cells) > 0 {
		args = append(args, "--cells", strings.Join(s.Cells, ","))
	}
	if s.ConsulAddr != "" {
		args = append(args, "--consul", s.ConsulAddr)
	}
	args = append(args, s.ExtraArgs...)
	t := s.task("global", args, map[string]string{
		"CELLGRID_DB": s.DBURL, "CELLGRID_REDIS": s.RedisAddr, "CELLGRID_NATS": s.NATSURL,
	})
	if s.ConsulAddr == "" {
		t.Services = []*api.Service{httpService(s.ServiceName, "http", []string{"global"}, nil)}
	}
	tg := api.NewTaskGroup("global", s.Count)
	tg.Networks = network(port("http", s.HTTPPort))
	tg.Tasks = []*api.Task{t}
	j := s.job(api.NewServiceJob(s.JobID, s.JobID, s.Region, 80))
	j.TaskGroups = []*api.TaskGroup{tg}
	return j, nil
}

// DGSArgs returns the task arguments of the DGS job: `dgs`, the spec's
// extra arguments, then the per-dispatch flags from NOMAD_META_*.
func DGSArgs(s DGSSpec) []string {
	args := append([]string{"dgs"}, s.ExtraArgs...)
	return append(args,
		"--cell", "${NOMAD_META_"+MetaCell+"}",
		"--id", "${NOMAD_META_"+MetaDGSID+"}",
		"--nats", s.NATSURL,
		"--addr", "0.0.0.0:${NOMAD_PORT_game}",
		"--advertise-host", "${NOMAD_IP_game}",
		"--version", "${NOMAD_META_"+MetaVersion+"}",
	)
}

// DGSJob returns the parameterized batch job whose dispatches are game
// servers. The game port is a host-network port: Nomad reserves the port
// number, and the DGS binds it for UDP.
func DGSJob(s DGSSpec) (*api.Job, error) {
	s.defaults(300, 128)
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.NATSURL == "" {
		return nil, errors.New("jobs: dgs needs a NATS URL")
	}
	if s.JobID == "" {
		s.JobID = DefaultDGSJobID
	}
	t := s.task("dgs", DGSArgs(s), nil)
	// A DGS that dies is replaced by the fleet (a new dispatch), never
	// restarted or rescheduled by Nomad under the same id.
	t.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
	tg := api.NewTaskGroup("dgs", 1)
	tg.Networks = network(port("game", s.GamePort))
	tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)}
	tg.Tasks = []*api.Task{t}
	j := s.job(api.NewBatchJob(s.JobID, s.JobID, s.Region, 60))
	j.ParameterizedJob = &api.ParameterizedJobConfig{
		Payload:      "forbidden",
		MetaRequired: []string{MetaCell, MetaDGSID, MetaVersion},
	}
	j.TaskGroups = []*api.TaskGroup{tg}
	return j, nil
}
