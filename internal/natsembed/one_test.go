package natsembed

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestSingleClusterJetStreamWithPlacement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := StartSuperCluster(ctx, t.TempDir(), []string{"solo"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Shutdown()
	nc, err := sc.Servers[0].Connect("t")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Placement: &jetstream.Placement{Cluster: "solo"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
}
