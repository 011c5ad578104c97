package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestWatchFollowsHeartbeatsAcrossGateways: heartbeats published in a
// cell's cluster reach the global cluster's watcher; the cell appears,
// follows its reported state, is failed when silent and recovers.
func TestWatchFollowsHeartbeatsAcrossGateways(t *testing.T) {
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global", "eu-west-1")
	global := testenv.Connect(t, sc.Server("global"))
	cell := testenv.Connect(t, sc.Server("eu-west-1"))
	r := NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, global, 400*time.Millisecond, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	beat := func(state string) {
		b, _ := json.Marshal(events.CellHeartbeat{ID: "eu-west-1", Region: "eu", API: "http://eu", Relay: "127.0.0.1:7777", State: state, At: time.Now()})
		if err := cell.Publish(events.CellHeartbeatSubject("eu-west-1"), b); err != nil {
			t.Fatal(err)
		}
		_ = cell.Publish(events.CellHeartbeatSubject("eu-west-1"), []byte("{not json")) // ignored
	}
	want := func(state string, keepBeating string) {
		testenv.Eventually(t, 10*time.Second, func() error {
			if keepBeating != "" {
				beat(keepBeating)
			}
			cells := r.Cells()
			if len(cells) != 1 || cells[0].State != state || cells[0].Beacon != "127.0.0.1:7777" {
				return fmt.Errorf("cells = %+v, want eu-west-1 %s", cells, state)
			}
			return nil
		})
	}
	want(StateHealthy, events.CellHealthy)
	// A heartbeat naming eu-west-1 on another cell's subject (what a
	// compromised us-east-1 could publish) is ignored: it neither adds a
	// cell nor changes eu-west-1's state or address.
	forged, _ := json.Marshal(events.CellHeartbeat{ID: "eu-west-1", Region: "eu", API: "http://evil", Relay: "127.0.0.1:6666", State: events.CellDraining, At: time.Now()})
	for range 20 {
		beat(events.CellHealthy)
		if err := cell.Publish(events.CellHeartbeatSubject("us-east-1"), forged); err != nil {
			t.Fatal(err)
		}
		_ = cell.Flush()
		time.Sleep(20 * time.Millisecond) // interleave real and forged beats
	}
	if cells := r.Cells(); len(cells) != 1 || cells[0].API != "http://eu" || cells[0].State != StateHealthy {
		t.Fatalf("after forged heartbeats: %+v", cells)
	}
	want(StateDraining, events.CellDraining)
	want(StateFailed, "") // silence
	want(StateHealthy, events.CellHealthy)
}
