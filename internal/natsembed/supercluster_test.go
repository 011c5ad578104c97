package natsembed

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestSuperClusterPubSubAndSourcing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc, err := StartSuperCluster(ctx, t.TempDir(), []string{"global", "eu-west-1", "us-east-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Shutdown()

	conn := func(cluster string) *nats.Conn {
		nc, err := sc.Server(cluster).Connect("test-" + cluster)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	eu, us, global := conn("eu-west-1"), conn("us-east-1"), conn("global")

	// Core pub/sub across gateways: published in eu, received in us and global.
	subUS, _ := us.SubscribeSync("hello.cells")
	subGlobal, _ := global.SubscribeSync("hello.cells")
	us.Flush()
	global.Flush()
	deadline := time.Now().Add(10 * time.Second)
	got := map[string]bool{}
	for len(got) < 2 && time.Now().Before(deadline) {
		if err := eu.Publish("hello.cells", []byte("from eu")); err != nil {
			t.Fatal(err)
		}
		for name, sub := range map[string]*nats.Subscription{"us": subUS, "global": subGlobal} {
			if m, err := sub.NextMsg(200 * time.Millisecond); err == nil && string(m.Data) == "from eu" {
				got[name] = true
			}
		}
	}
	if !got["us"] || !got["global"] {
		t.Fatalf("message from eu reached: %v", got)
	}

	// A stream placed in eu, sourced into a stream placed in global.
	jsEU, _ := jetstream.New(eu)
	jsGlobal, _ := jetstream.New(global)
	_, err = jsEU.CreateStream(ctx, jetstream.StreamConfig{
		Name: "SCORES_EU", Subjects: []string{"scores.eu.>"},
		Placement: &jetstream.Placement{Cluster: "eu-west-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = jsGlobal.CreateStream(ctx, jetstream.StreamConfig{
		Name:      "SCORES_ALL",
		Placement: &jetstream.Placement{Cluster: "global"},
		Sources:   []*jetstream.StreamSource{{Name: "SCORES_EU"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := jsEU.Publish(ctx, "scores.eu.p1", []byte("42")); err != nil {
			t.Fatal(err)
		}
	}
	info, err := jsEU.Stream(ctx, "SCORES_EU")
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Cluster; c == nil || c.Name != "eu-west-1" {
		t.Fatalf("SCORES_EU placed in %+v, want eu-west-1", c)
	}
	for {
		s, err := jsGlobal.Stream(ctx, "SCORES_ALL")
		if err == nil && s.CachedInfo().State.Msgs == 5 {
			if c := s.CachedInfo().Cluster; c == nil || c.Name != "global" {
				t.Fatalf("SCORES_ALL placed in %+v, want global", c)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("sourced stream did not catch up: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
