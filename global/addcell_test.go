package global_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	celltelemetry "github.com/cellgrid/cellgrid/cell/telemetry"
	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/global/results"
	"github.com/cellgrid/cellgrid/internal/natsembed"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/topology"
)

// cellStreams creates what a cell creates at start: its match stream and
// its telemetry stream (through the cell's own telemetry intake), placed
// in its cluster. The intake is returned to publish telemetry through.
func cellStreams(t *testing.T, js jetstream.JetStream, cell string) *celltelemetry.Intake {
	t.Helper()
	in, err := celltelemetry.New(celltelemetry.Config{Cell: cell, EventsPerSecond: 1e6, Burst: 1e6}, celltelemetry.Deps{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	// A cell that just joined the supercluster may not be a placement
	// candidate yet ("no suitable peers"): retry until the meta leader
	// knows it.
	testenv.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := events.EnsureMatchStream(ctx, js, cell, time.Minute); err != nil {
			return err
		}
		return in.EnsureStream(ctx)
	})
	return in
}

// TestCellAddedLaterIsSourced: the global layer starts knowing cell A only
// (--cells A). Cell B then starts (its own NATS cluster joining the
// supercluster) and heartbeats. A match result B publishes must be applied
// exactly once (exact XP and wallet), B's telemetry must reach
// game_event_log, and A's results must still flow after the global
// streams gained B's sources. Before the cell sources follower the global
// streams sourced A only and B's result was never applied.
func TestCellAddedLaterIsSourced(t *testing.T) {
	d := testenv.NewDatabase(t) // first: the shared PostgreSQL outlives the test
	testenv.CheckGoroutines(t)
	const cellA, cellB = "cell-a", "cell-b"
	sc := testenv.NewSuperCluster(t, "global", cellA)
	rd := testenv.NewRedis(t)
	ctx := context.Background()
	nc := testenv.Connect(t, sc.Server("global"))
	jsG, _ := jetstream.New(nc)
	jsA, _ := jetstream.New(testenv.Connect(t, sc.Server(cellA)))
	cellStreams(t, jsA, cellA)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := global.DefaultConfig()
	cfg.Cells = []string{cellA}
	cfg.Auth = auth.Config{EncryptionKey: key}
	cfg.Results = results.Config{XPPerMatch: 50, XPPerWin: 100, CurrencyPerMatch: map[string]int64{"gold": 5}, CurrencyPerWin: map[string]int64{"gold": 10}}
	cfg.UnreadyLinger = time.Minute // the test ends it by cancelling Run
	topo := topology.NewRegistry()
	g, err := global.New(cfg, global.Deps{DB: d.Pool, Redis: rd.Client, NATS: nc, Topology: topo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	testenv.Eventually(t, 60*time.Second, func() error {
		_, err := jsG.Consumer(ctx, "MATCH_GLOBAL", "results")
		return err
	})

	// Cell B: a new NATS cluster gatewayed into the running supercluster.
	srvB, err := natsembed.Start(natsembed.Config{
		Cluster: cellB, StoreDir: filepath.Join(t.TempDir(), cellB),
		Gateways: map[string]string{"global": sc.Server("global").GatewayURL()},
		Tags:     []string{"cluster:" + cellB},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Shut down with the supercluster, quietly (alone first, the others
	// would log its gateway going away).
	sc.Servers = append(sc.Servers, srvB)
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := srvB.WaitGateways(wctx, 2); err != nil {
		t.Fatal(err)
	}
	srvB.Settled()
	ncB := testenv.Connect(t, srvB)
	jsB, _ := jetstream.New(ncB)
	intakeB := cellStreams(t, jsB, cellB)

	// B heartbeats as a cell does, about once a second, until the test ends.
	hbCtx, hbStop := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	t.Cleanup(func() { hbStop(); <-hbDone })
	go func() {
		defer close(hbDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			b, _ := json.Marshal(events.CellHeartbeat{ID: cellB, Region: "b", API: "http://127.0.0.1:1", Relay: "127.0.0.1:1", State: topology.StateHealthy, At: time.Now()})
			_ = ncB.Publish(events.CellHeartbeatSubject, b)
			select {
			case <-hbCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, c := range topo.Cells() {
			if c.ID == cellB {
				return nil
			}
		}
		return fmt.Errorf("topology %v lacks %s", topo.Cells(), cellB)
	})

	// A match B recorded: ann wins against bob.
	ann := testenv.NewPlayer(t, d.Pool, "ann")
	bob := testenv.NewPlayer(t, d.Pool, "bob")
	session := uuid.NewString()
	mr := events.MatchResult{
		SessionID: session, Cell: cellB, GameMode: "duel", Winner: ann, EndedAt: time.Now().UTC(), Reason: "score_limit",
		Players: []events.PlayerResult{{PlayerID: ann, Team: 0, Score: 3}, {PlayerID: bob, Team: 1, Score: 1}},
	}
	publishResult(t, jsB, mr, session)

	type account struct{ xp, gold int64 }
	read := func(player string) (account, error) {
		var a account
		if err := d.Pool.QueryRow(ctx, `SELECT xp FROM players WHERE id = $1`, player).Scan(&a.xp); err != nil {
			return a, err
		}
		err := d.Pool.QueryRow(ctx, `SELECT COALESCE(sum(amount), 0) FROM transactions WHERE player_id = $1 AND currency = 'gold'`, player).Scan(&a.gold)
		return a, err
	}
	want := map[string]account{ann: {xp: 150, gold: 15}, bob: {xp: 50, gold: 5}}
	check := func() error {
		for p, w := range want {
			got, err := read(p)
			if err != nil {
				return err
			}
			if got != w {
				return fmt.Errorf("player %s: xp %d gold %d, want xp %d gold %d", p, got.xp, got.gold, w.xp, w.gold)
			}
		}
		return nil
	}
	testenv.Eventually(t, 60*time.Second, check)

	// The same result again under another message id (JetStream's
	// de-duplication does not hide it): consumed, applied no second time.
	publishResult(t, jsB, mr, session+"-again")
	testenv.Eventually(t, 60*time.Second, func() error {
		c, err := jsG.Consumer(ctx, "MATCH_GLOBAL", "results")
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream != 2 {
			return fmt.Errorf("results ack floor %d, want 2", info.AckFloor.Stream)
		}
		return nil
	})
	if err := check(); err != nil {
		t.Fatalf("after the redelivered result: %v", err)
	}

	// A, sourced from the start, still flows after the sources changed.
	jsA2, _ := jetstream.New(testenv.Connect(t, sc.Server(cellA)))
	sA := uuid.NewString()
	publishResult(t, jsA2, events.MatchResult{SessionID: sA, Cell: cellA, GameMode: "duel", Winner: bob,
		Players: []events.PlayerResult{{PlayerID: bob, Score: 2}}}, sA)
	want[bob] = account{xp: 200, gold: 20}
	testenv.Eventually(t, 60*time.Second, check)

	// B's telemetry reaches game_event_log.
	b, _ := json.Marshal(map[string]any{"events": []map[string]any{{"event_type": "kill", "timestamp": time.Now().Format(time.RFC3339Nano), "payload": map[string]any{"by": "ann"}}}})
	req := testenv.AsPlayer(httptest.NewRequest("POST", "/game/telemetry", bytes.NewReader(b)), ann)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	intakeB.ServeHTTP(w, req)
	var out struct {
		EventIDs []string `json:"event_ids"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != http.StatusAccepted || err != nil || len(out.EventIDs) != 1 {
		t.Fatalf("telemetry intake in %s: %d %s %v", cellB, w.Code, w.Body, err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		var cell string
		err := d.Pool.QueryRow(ctx, `SELECT cell FROM game_event_log WHERE id = $1`, out.EventIDs[0]).Scan(&cell)
		if err != nil {
			return fmt.Errorf("event %s from %s not in game_event_log: %w", out.EventIDs[0], cellB, err)
		}
		if cell != cellB {
			return fmt.Errorf("event cell %q, want %q", cell, cellB)
		}
		return nil
	})
}

func publishResult(t *testing.T, js jetstream.JetStream, mr events.MatchResult, msgID string) {
	t.Helper()
	b, _ := json.Marshal(mr)
	m := nats.NewMsg(events.MatchResultSubject(mr.Cell))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
