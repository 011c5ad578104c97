package natsembed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// recorder keeps every record at or above WARN.
type recorder struct {
	mu    sync.Mutex
	loud  []string
	debug int
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Level >= slog.LevelWarn {
		r.loud = append(r.loud, rec.Level.String()+" "+rec.Message)
	} else {
		r.debug++
	}
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) snapshot() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.loud...), r.debug
}

// A supercluster coming up says "Waiting for routing to be established" and
// "JetStream has not established contact with a meta leader" at WARN; that
// is start-up chatter, logged at debug. Once StartSuperCluster returns, a
// stream can be placed in every cluster at once (the meta leader knows every
// peer), and stopping is quiet too.
func TestSuperClusterStartAndStopAreQuiet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := &recorder{}
	names := []string{"global", "eu-west-1", "us-east-1", "ap-south-1"}
	sc, err := StartSuperCluster(ctx, t.TempDir(), names, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := sc.Server("global").Connect("test")
	if err != nil {
		sc.Shutdown()
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	for i, name := range names {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: fmt.Sprintf("S%d", i), Subjects: []string{"s." + name + ".>"},
			Placement: &jetstream.Placement{Cluster: name},
		}); err != nil {
			t.Errorf("stream placed in %s right after start: %v", name, err)
		}
	}
	nc.Close()
	// Let the servers talk for a while: chatter that comes after start-up
	// (e.g. the meta leader's first health check) must be quiet too.
	time.Sleep(2 * time.Second)
	sc.Shutdown()
	loud, debug := rec.snapshot()
	if len(loud) > 0 {
		t.Errorf("a healthy supercluster logged at WARN or above:\n%v", loud)
	}
	if debug == 0 {
		t.Errorf("no debug records: the servers' chatter was dropped instead of demoted")
	}
}
