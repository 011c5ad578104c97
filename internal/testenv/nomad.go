package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/localserver"
)

// Nomad is a Nomad dev agent (see localserver.StartNomad).
type Nomad = localserver.Nomad

// NomadConfig configures a Nomad dev agent.
type NomadConfig = localserver.NomadConfig

// NewNomad starts a Nomad dev agent for this test and stops it (SIGINT) at
// the end of the test. A missing binary fails the test with the command
// that builds it.
func NewNomad(t testing.TB, cfg NomadConfig) *Nomad {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := localserver.StartNomad(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

// JoinNomadRegions starts one Nomad dev agent per region and joins their
// servers over Serf, so each forwards requests for the others' regions.
// The first region's agent comes first in the result.
func JoinNomadRegions(t testing.TB, regions ...string) []*Nomad {
	t.Helper()
	var out []*Nomad
	for _, r := range regions {
		out = append(out, NewNomad(t, NomadConfig{Region: r, Datacenter: r + "-1"}))
	}
	for _, n := range out[1:] {
		if _, err := out[0].Client.Agent().Join(n.SerfAddr); err != nil {
			t.Fatalf("testenv: nomad join %s: %v", n.Region, err)
		}
	}
	Eventually(t, 30*time.Second, func() error {
		rs, err := out[0].Client.Regions().List()
		if err != nil {
			return err
		}
		if len(rs) != len(regions) {
			return fmt.Errorf("regions %v, want %v", rs, regions)
		}
		return nil
	})
	return out
}
