package localserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// NomadConfig configures a Nomad dev agent. Zero values: region "global",
// datacenter "dc1", no Consul (Nomad's Consul integration is pointed at a
// closed port so it never touches another test's agent).
type NomadConfig struct {
	// Dir holds the agent's config, log and data; empty: a temporary
	// folder removed by Stop. (The dev agent's state is lost on stop
	// either way.)
	Dir        string
	Region     string
	Datacenter string
	// ConsulAddr is a Consul agent's HTTP host:port for Nomad's service
	// registrations and fingerprint.
	ConsulAddr string
}

// Nomad is a running `nomad agent -dev` bound to 127.0.0.1 on free ports,
// with the raw_exec driver enabled.
type Nomad struct {
	// Addr is the HTTP API URL (http://127.0.0.1:port).
	Addr     string
	RPCAddr  string // host:port
	SerfAddr string // host:port (for `server join`)
	Region   string
	Client   *nomad.Client
	// NodeID is the dev agent's client node.
	NodeID string
	a      *agent
}

// StartNomad starts a Nomad dev agent and waits until its client node is
// ready with raw_exec healthy. Stop it with Stop.
func StartNomad(ctx context.Context, cfg NomadConfig) (*Nomad, error) {
	return startWithRetry(func() (*Nomad, error) { return startNomadOnce(ctx, cfg) })
}

func startNomadOnce(ctx context.Context, cfg NomadConfig) (*Nomad, error) {
	bin, err := NomadBinary()
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "global"
	}
	if cfg.Datacenter == "" {
		cfg.Datacenter = "dc1"
	}
	ports, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	consul := cfg.ConsulAddr
	if consul == "" {
		consul = fmt.Sprintf("127.0.0.1:%d", ports[3]) // nothing listens there
	}
	// The data folder is not a t.TempDir: a dev agent mounts task secrets
	// under it, and it must be removed only after the agent unmounted them.
	dir, tmp, err := agentDir("nomad", cfg.Dir)
	if err != nil {
		return nil, err
	}
	// A dev agent's server state is in memory: client state left from a
	// previous run would only confuse it.
	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
		return nil, err
	}
	hcl := fmt.Sprintf(`
name = "cellgrid-test-%[1]d"
region = %[2]q
datacenter = %[3]q
bind_addr = "127.0.0.1"
data_dir = %[4]q
disable_update_check = true
log_level = "INFO"
ports {
  http = %[1]d
  rpc  = %[5]d
  serf = %[6]d
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
client {
  network_interface = "lo"
  cpu_total_compute = 40000
  memory_total_mb   = 16384
  gc_interval       = "10s"
}
consul {
  address          = %[7]q
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
`, ports[0], cfg.Region, cfg.Datacenter, filepath.Join(dir, "data"), ports[1], ports[2], consul)
	a, err := launchAgent("nomad", bin, dir, tmp, "-config", hcl)
	if err != nil {
		return nil, err
	}
	n := &Nomad{
		Addr:     fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		RPCAddr:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
		SerfAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]),
		Region:   cfg.Region,
		a:        a,
	}
	ncfg := nomad.DefaultConfig()
	ncfg.Address = n.Addr
	ncfg.Region = cfg.Region
	if n.Client, err = nomad.NewClient(ncfg); err != nil {
		n.Stop()
		return nil, err
	}
	if err := a.waitReady(ctx, n.ready); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// ready: a leader, and a ready client node whose raw_exec driver is healthy.
func (n *Nomad) ready(ctx context.Context) error {
	q := (&nomad.QueryOptions{}).WithContext(ctx)
	leader, err := n.Client.Status().Leader()
	if err != nil || leader == "" {
		return fmt.Errorf("no leader (%v)", err)
	}
	nodes, _, err := n.Client.Nodes().List(q)
	if err != nil {
		return err
	}
	for _, st := range nodes {
		if st.Status != nomad.NodeStatusReady {
			continue
		}
		if d := st.Drivers["raw_exec"]; d != nil && d.Detected && d.Healthy {
			n.NodeID = st.ID
			return nil
		}
	}
	return fmt.Errorf("no ready node with raw_exec (%d nodes)", len(nodes))
}

// Stop interrupts the agent (it stops its allocations first), waits for it
// and removes its data folder. Safe twice.
func (n *Nomad) Stop() {
	n.a.Stop(30 * time.Second)
	if n.a.tmpDir {
		_ = os.RemoveAll(n.a.dir)
	}
}

// Log returns the end of the agent's log (for test failures).
func (n *Nomad) Log() string { return n.a.logTail() }
