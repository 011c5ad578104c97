package cell

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestDeadComponentFailsReadinessAndRun deletes the match results
// consumer under a running cell: /readyz must answer 503 naming the
// component, and Run must return its error (cellgrid cell then exits
// non-zero) instead of serving while no session ever ends.
func TestDeadComponentFailsReadinessAndRun(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UnreadyLinger = time.Minute })
	e.wantRunErr = true
	ctx := context.Background()
	// The ops listener says why; the public one only what.
	readyz := func() (int, map[string]string) { return getReadyz(t, e.c.OpsURL()) }
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, err := js.Consumer(ctx, events.MatchStream(cellID), "cell-results"); err != nil {
			return err
		}
		if code, body := readyz(); code != 200 {
			return fmt.Errorf("readyz %d %v", code, body)
		}
		return nil
	})
	if err := js.DeleteConsumer(ctx, events.MatchStream(cellID), "cell-results"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if code, body := readyz(); code != 503 || !strings.HasPrefix(body["components"], "match results:") {
			return fmt.Errorf("readyz %d %v, want 503 naming match results", code, body)
		}
		return nil
	})
	if code, body := getReadyz(t, e.c.URL()); code != 503 || body["components"] != "failing" {
		t.Fatalf("public readyz %d %v, want 503 with components failing", code, body)
	}
	e.stop()
	if e.runErr == nil || !strings.Contains(e.runErr.Error(), "match results") {
		t.Fatalf("Run = %v, want the match results consumer's failure", e.runErr)
	}
}
