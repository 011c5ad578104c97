package localserver

import (
	"context"
	"fmt"
	"os"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// ConsulConfig configures a Consul dev agent. Zero Datacenter is "dc1".
type ConsulConfig struct {
	// Dir: as NomadConfig.Dir.
	Dir        string
	Datacenter string
}

// Consul is a running `consul agent -dev` bound to 127.0.0.1 on free
// ports (DNS and gRPC off).
type Consul struct {
	// Addr is the HTTP API host:port (what consul/api and Nomad take).
	Addr       string
	WANAddr    string // host:port of Serf WAN (for Agent().Join(addr, true))
	Datacenter string
	Client     *consul.Client
	a          *agent
}

// URL is the HTTP API as a URL.
func (c *Consul) URL() string { return "http://" + c.Addr }

// StartConsul starts a Consul dev agent and waits for its leader and its
// own node in the catalog. Stop it with Stop.
func StartConsul(ctx context.Context, cfg ConsulConfig) (*Consul, error) {
	return startWithRetry(func() (*Consul, error) { return startConsulOnce(ctx, cfg) })
}

func startConsulOnce(ctx context.Context, cfg ConsulConfig) (*Consul, error) {
	bin, err := ConsulBinary()
	if err != nil {
		return nil, err
	}
	if cfg.Datacenter == "" {
		cfg.Datacenter = "dc1"
	}
	ports, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	dir, tmp, err := agentDir("consul", cfg.Dir)
	if err != nil {
		return nil, err
	}
	hcl := fmt.Sprintf(`
node_name = "cellgrid-test-%[1]d"
datacenter = %[2]q
bind_addr = "127.0.0.1"
client_addr = "127.0.0.1"
advertise_addr = "127.0.0.1"
advertise_addr_wan = "127.0.0.1"
disable_update_check = true
log_level = "WARN"
ports {
  http     = %[1]d
  serf_lan = %[3]d
  serf_wan = %[4]d
  server   = %[5]d
  dns      = -1
  grpc     = -1
  grpc_tls = -1
}
`, ports[0], cfg.Datacenter, ports[1], ports[2], ports[3])
	a, err := launchAgent("consul", bin, dir, tmp, "-config-file", hcl)
	if err != nil {
		return nil, err
	}
	c := &Consul{
		Addr:       fmt.Sprintf("127.0.0.1:%d", ports[0]),
		WANAddr:    fmt.Sprintf("127.0.0.1:%d", ports[2]),
		Datacenter: cfg.Datacenter,
		a:          a,
	}
	ccfg := consul.DefaultConfig()
	ccfg.Address = c.Addr
	if c.Client, err = consul.NewClient(ccfg); err != nil {
		c.Stop()
		return nil, err
	}
	if err := a.waitReady(ctx, c.ready); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Consul) ready(ctx context.Context) error {
	leader, err := c.Client.Status().Leader()
	if err != nil || leader == "" {
		return fmt.Errorf("no leader (%v)", err)
	}
	nodes, _, err := c.Client.Catalog().Nodes((&consul.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return fmt.Errorf("no node in the catalog yet")
	}
	return nil
}

// Stop interrupts the agent, waits for it and removes its folder. Safe twice.
func (c *Consul) Stop() {
	c.a.Stop(20 * time.Second)
	if c.a.tmpDir {
		_ = os.RemoveAll(c.a.dir)
	}
}

// Log returns the end of the agent's log (for test failures).
func (c *Consul) Log() string { return c.a.logTail() }
