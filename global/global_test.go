package global_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestMain is in openapi_test.go (one per test binary).

const cellID = "eu-west-1"

type rig struct {
	g    *global.Server
	js   jetstream.JetStream // on the global cluster
	done chan error
	stop context.CancelFunc
	rd   *testenv.Redis
}

func start(t *testing.T) *rig {
	t.Helper()
	d := testenv.NewDatabase(t) // first: the shared PostgreSQL outlives the test
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global", cellID)
	rd := testenv.NewRedis(t)
	nc := testenv.Connect(t, sc.Server("global"))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The cell's streams the global layer sources, as a cell creates them
	// (sources of missing streams leave nats-server goroutines retrying).
	jsCell, err := jetstream.New(testenv.Connect(t, sc.Server(cellID)))
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := events.EnsureMatchStream(sctx, jsCell, cellID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := jsCell.CreateOrUpdateStream(sctx, jetstream.StreamConfig{
		Name: events.TelemetryStream(cellID), Subjects: []string{events.TelemetrySubjects(cellID)},
		Storage: jetstream.FileStorage, Placement: &jetstream.Placement{Cluster: cellID},
	}); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := global.DefaultConfig()
	cfg.Cells = []string{cellID}
	cfg.Auth = auth.Config{EncryptionKey: key}
	cfg.UnreadyLinger = time.Minute // the test ends it by cancelling Run
	g, err := global.New(cfg, global.Deps{DB: d.Pool, Redis: rd.Client, NATS: nc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{g: g, js: js, done: make(chan error, 1), stop: cancel, rd: rd}
	go func() { r.done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// readyz returns the ops listener's /readyz status and its JSON body.
func (r *rig) readyz() (int, map[string]string, error) {
	resp, err := http.Get(r.g.OpsURL() + "/readyz")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if err := json.Unmarshal(b, &body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("readyz %d %q: %w", resp.StatusCode, b, err)
	}
	return resp.StatusCode, body, nil
}

// TestDeadConsumerFailsReadinessAndRun kills a consumer's stream as the
// layer starts (the results consumer's, as the issue asks, and the
// telemetry sink's): /readyz must turn 503 naming the component, and Run
// must return its error (cellgrid global then exits non-zero). Before the
// supervisor the consumers' end was read only at shutdown and /readyz
// stayed green; the telemetry sink even spun on "no responders".
func TestDeadConsumerFailsReadinessAndRun(t *testing.T) {
	for _, tc := range []struct{ stream, durable, component string }{
		{"MATCH_GLOBAL", "results", "results"},
		{"TELEMETRY_GLOBAL", "telemetry-sink", "telemetry sink"},
	} {
		t.Run(tc.component, func(t *testing.T) {
			r := start(t)
			ctx := context.Background()
			// Wait for the consumer to exist, then delete its stream under it.
			testenv.Eventually(t, 30*time.Second, func() error {
				_, err := r.js.Consumer(ctx, tc.stream, tc.durable)
				return err
			})
			testenv.Eventually(t, 30*time.Second, func() error {
				code, body, err := r.readyz()
				if err != nil || code != http.StatusOK {
					return fmt.Errorf("readyz %d %v %v", code, body, err)
				}
				return nil
			})
			if err := r.js.DeleteStream(ctx, tc.stream); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 30*time.Second, func() error {
				code, body, err := r.readyz()
				if err != nil {
					return err
				}
				if code != http.StatusServiceUnavailable || !strings.HasPrefix(body["components"], tc.component+":") {
					return fmt.Errorf("readyz %d %v, want 503 naming %s", code, body, tc.component)
				}
				return nil
			})
			r.stop()
			select {
			case err := <-r.done:
				if err == nil || !strings.Contains(err.Error(), tc.component) {
					t.Fatalf("Run = %v, want the %s failure", err, tc.component)
				}
				r.done <- err // for the cleanup
			case <-time.After(60 * time.Second):
				t.Fatal("Run did not return")
			}
		})
	}
}

// TestCleanStop: a cancelled Run returns nil; Close after Run and twice
// is fine.
func TestCleanStop(t *testing.T) {
	r := start(t)
	testenv.Eventually(t, 30*time.Second, func() error {
		code, body, err := r.readyz()
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("readyz %d %v %v", code, body, err)
		}
		return nil
	})
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatalf("Run after a clean stop = %v", err)
	}
	r.done <- nil
	if err := r.g.Close(); err != nil {
		t.Fatalf("Close after Run = %v", err)
	}
	if err := r.g.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestOpsListener: /metrics and the readiness errors are served on the
// ops listener only; with Redis down the public /readyz names the failing
// check without its error text.
func TestOpsListener(t *testing.T) {
	r := start(t)
	get := func(url string) (int, string, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get(r.g.URL() + "/metrics"); code != 404 || ct != "application/json" || !strings.Contains(body, `"code"`) {
		t.Fatalf("public /metrics: %d %s %s, want 404 JSON", code, ct, body)
	}
	if code, _, body := get(r.g.OpsURL() + "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("ops /metrics: %d %.200s", code, body)
	}
	r.rd.Stop(t)
	testenv.Eventually(t, 30*time.Second, func() error {
		code, body, err := r.readyz()
		if err != nil || code != 503 || body["redis"] == "ok" || body["redis"] == "failing" || body["redis"] == "" {
			return fmt.Errorf("ops readyz %d %v %v, want the redis error", code, body, err)
		}
		return nil
	})
	code, _, raw := get(r.g.URL() + "/readyz")
	var body map[string]string
	if err := json.Unmarshal([]byte(raw), &body); err != nil || code != 503 || body["redis"] != "failing" {
		t.Fatalf("public readyz %d %s, want 503 with redis failing", code, raw)
	}
	for name, v := range body {
		if v != "ok" && v != "failing" {
			t.Errorf("public readyz %s = %q: error text on the public listener", name, v)
		}
	}
}
