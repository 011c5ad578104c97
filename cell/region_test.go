package cell

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestRegionFailedOverRefusesWithRedirect: once the region's failover
// record is in the bucket, a join is refused with a redirect to the
// client's nearest listed cell; the match running before ends normally;
// the restore lets joins in again.
func TestRegionFailedOverRefusesWithRedirect(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DGS.Args = append(c.DGS.Args, "--wait-for-players=1s", "--time-limit=2s")
		c.HeartbeatInterval = 100 * time.Millisecond
	})
	ctx := context.Background()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: events.RegionBucket, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	ps := newPlayers(4)
	t1, t2 := e.join(t, ps[0], "duel"), e.join(t, ps[1], "duel")
	v1 := e.waitReady(t, ps[0], t1)
	e.waitReady(t, ps[1], t2)

	rf, _ := json.Marshal(events.RegionFailover{Region: cellID, At: time.Now(), Redirect: []events.CellRef{
		{ID: "far-1", Region: "far", API: "http://far"}, {ID: "near-1", Region: "near", API: "http://near"},
	}})
	if _, err := kv.Put(ctx, cellID, rf); err != nil {
		t.Fatal(err)
	}
	type refusal struct {
		Error struct {
			Code    string `json:"code"`
			Details struct {
				Redirect Redirect `json:"redirect"`
			} `json:"details"`
		} `json:"error"`
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		var out refusal
		res := e.call(t, "POST", "/matchmaking/join", ps[2], map[string]any{"game_mode": "duel",
			"latencies_ms": map[string]int{cellID: 5, "far-1": 90, "near-1": 40}}, &out)
		if res.StatusCode != http.StatusServiceUnavailable || out.Error.Code != "region_failed_over" || res.Header.Get("Retry-After") == "" {
			return fmt.Errorf("join answered %d %+v", res.StatusCode, out)
		}
		if r := out.Error.Details.Redirect; r.Cell != "near-1" || r.API != "http://near" || r.Region != "near" {
			return fmt.Errorf("redirect %+v, want near-1 (the lowest latency)", r)
		}
		return nil
	})
	if _, ok := e.c.FailedOver(); !ok {
		t.Fatal("FailedOver false while refusing")
	}
	// The match that was running finishes (drain, not kill).
	testenv.Eventually(t, 30*time.Second, func() error {
		var st string
		if err := e.db.QueryRow(ctx, `SELECT status FROM game_sessions WHERE id = $1`, v1.Session.ID).Scan(&st); err != nil || st != "ended" {
			return fmt.Errorf("running session status %q %v", st, err)
		}
		return nil
	})

	if err := kv.Delete(ctx, cellID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if res := e.call(t, "POST", "/matchmaking/join", ps[3], map[string]any{"game_mode": "duel"}, nil); res.StatusCode != http.StatusAccepted {
			return fmt.Errorf("join after restore: %d", res.StatusCode)
		}
		return nil
	})
}
