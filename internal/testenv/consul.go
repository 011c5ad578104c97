package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/localserver"
)

// Consul is a Consul dev agent (see localserver.StartConsul).
type Consul = localserver.Consul

// ConsulConfig configures a Consul dev agent.
type ConsulConfig = localserver.ConsulConfig

// NewConsul starts a Consul dev agent for this test and stops it (SIGINT)
// at the end of the test. A missing binary fails the test with the command
// that builds it.
func NewConsul(t testing.TB, cfg ConsulConfig) *Consul {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := localserver.StartConsul(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

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
