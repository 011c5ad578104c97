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
	debug []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Level >= slog.LevelWarn {
		r.loud = append(r.loud, rec.Level.String()+" "+rec.Message)
	} else {
		r.debug = append(r.debug, rec.Message)
	}
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) snapshot() (loud, debug []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.loud...), append([]string(nil), r.debug...)
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
	// Chatter that comes a little after start-up (the meta leader's first
	// health check) must be quiet too.
	time.Sleep(2 * time.Second)
	nc.Close()
	sc.Shutdown()
	loud, debug := rec.snapshot()
	if len(loud) > 0 {
		t.Errorf("a healthy supercluster logged at WARN or above:\n%v", loud)
	}
	if len(debug) == 0 {
		t.Errorf("no debug records: the servers' chatter was dropped instead of demoted")
	}
}

// The adapter: quiet while starting, its own level once settled, and a
// sourcing stream whose source is not there yet is debug (nats-server
// retries and calls it normal; the global layer's sourcing streams start
// before the cells' streams).
func TestAdapterLevels(t *testing.T) {
	rec := &recorder{}
	a := &slogAdapter{log: slog.New(rec)}
	a.quiet.Store(true)
	a.Warnf("Waiting for routing to be established...")
	a.Errorf("Error connecting to implicit gateway %q", "eu-west-1")
	a.quiet.Store(false)
	a.Warnf("JetStream error response for stream %s create source consumer %s: %+v", "TELEMETRY_GLOBAL", "TELEMETRY_us_east_1", "stream not found (10059)")
	a.Noticef("Server is ready")
	if loud, debug := rec.snapshot(); len(loud) != 0 || len(debug) != 4 {
		t.Fatalf("quiet or harmless: loud %v, debug %v", loud, debug)
	}
	a.Warnf("JetStream error response for stream %s create source consumer %s: %+v", "S", "T", "insufficient resources")
	a.Errorf("something broke")
	if loud, _ := rec.snapshot(); len(loud) != 2 {
		t.Fatalf("settled warnings and errors: %v, want both at their level", loud)
	}
}
