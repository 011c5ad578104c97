package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// ConsulConfig configures a Consul dev agent. Zero Datacenter is "dc1".
type ConsulConfig struct {
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

// NewConsul starts a Consul dev agent for this test and stops it (SIGINT)
// at the end of the test. A missing binary fails the test with the command
// that builds it.
func NewConsul(t testing.TB, cfg ConsulConfig) *Consul {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := StartConsul(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StartConsul starts a Consul dev agent and waits for its leader and its
// own node in the catalog. Stop it with Stop.
func StartConsul(ctx context.Context, cfg ConsulConfig) (*Consul, error) {
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
	dir, err := os.MkdirTemp("", "cellgrid-consul-")
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
	conf := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
		return nil, err
	}
	a, err := startAgent("consul", bin, dir, "agent", "-dev", "-config-file", conf)
	if err != nil {
		_ = os.RemoveAll(dir)
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
	_ = os.RemoveAll(c.a.dir)
}

// Log returns the end of the agent's log (for test failures).
func (c *Consul) Log() string { return c.a.logTail() }

// JoinConsulWAN starts one Consul dev agent per datacenter and joins them
// over the WAN, so each answers queries for the others (?dc=…) and
// prepared queries can fail over between them.
func JoinConsulWAN(t testing.TB, datacenters ...string) []*Consul {
	t.Helper()
	var out []*Consul
	for _, dc := range datacenters {
		out = append(out, NewConsul(t, ConsulConfig{Datacenter: dc}))
	}
	for _, c := range out[1:] {
		if err := out[0].Client.Agent().Join(c.WANAddr, true); err != nil {
			t.Fatalf("testenv: consul WAN join %s: %v", c.Datacenter, err)
		}
	}
	Eventually(t, 30*time.Second, func() error {
		for _, c := range out {
			dcs, err := c.Client.Catalog().Datacenters()
			if err != nil {
				return err
			}
			if len(dcs) != len(datacenters) {
				return fmt.Errorf("%s sees datacenters %v, want %v", c.Datacenter, dcs, datacenters)
			}
		}
		return nil
	})
	return out
}
