package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/internal/natsembed"
)

// NewSuperCluster starts one embedded JetStream server per cluster name,
// joined by gateways, and shuts it down at the end of the test.
func NewSuperCluster(t testing.TB, clusters ...string) *natsembed.SuperCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc, err := natsembed.StartSuperCluster(ctx, t.TempDir(), clusters, nil)
	if err != nil {
		t.Fatalf("testenv: supercluster: %v", err)
	}
	t.Cleanup(sc.Shutdown)
	return sc
}

// NewNATS starts a single JetStream-enabled server whose cluster is named
// cluster (streams placed in it work) and returns a connection to it; it
// returns once the JetStream API answers.
func NewNATS(t testing.TB, cluster string) (*natsembed.Server, *nats.Conn) {
	t.Helper()
	sc := NewSuperCluster(t, cluster)
	s := sc.Servers[0]
	return s, Connect(t, s)
}

// Connect opens a client connection closed at the end of the test.
func Connect(t testing.TB, s *natsembed.Server) *nats.Conn {
	t.Helper()
	nc, err := s.Connect(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
