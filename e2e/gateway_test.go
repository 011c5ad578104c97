package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestGatewayCutAndHealExactlyOnce: while the NATS gateway between a cell
// and the global layer is cut (both directions, at the emulated
// WAN's gateway switches), the cell keeps accepting telemetry and a match result (published
// twice, as a retrying DGS would); none reaches the database during the
// cut, and after the heal every accepted event and the result arrive
// exactly once.
func TestGatewayCutAndHealExactlyOnce(t *testing.T) {
	st := startWANStack(t, devstack.DefaultWAN(), "eu-west-1")
	ctx := context.Background()
	pool := st.DB()
	var players []string
	var tokens []string
	for i := range 2 {
		c, err := client.New(client.Config{GlobalURL: st.GlobalURL})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := c.LoginDevice(ctx, fmt.Sprintf("gateway-cut-device-%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		players, tokens = append(players, sess.PlayerID), append(tokens, sess.AccessToken)
	}
	cellAPI := st.Cells[0].API
	postTelemetry := func(token string, n int) []string {
		t.Helper()
		evs := make([]map[string]any, n)
		for i := range evs {
			evs[i] = map[string]any{"event_type": "drill.ping", "timestamp": time.Now().UTC(), "payload": map[string]any{"i": i}}
		}
		b, _ := json.Marshal(map[string]any{"events": evs})
		req, _ := http.NewRequest("POST", cellAPI+"/game/telemetry", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			EventIDs []string `json:"event_ids"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("telemetry: %d %v", res.StatusCode, err)
		}
		return out.EventIDs
	}
	count := func(ids []string) (int, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log WHERE id = ANY($1::UUID[])`, ids).Scan(&n)
		return n, err
	}
	// The path works before the cut.
	before := postTelemetry(tokens[0], 3)
	testenv.Eventually(t, 30*time.Second, func() error {
		if n, err := count(before); err != nil || n != 3 {
			return fmt.Errorf("%d of 3 events before the cut (%v)", n, err)
		}
		return nil
	})

	if err := st.IsolateCluster("eu-west-1"); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(st.ClusterNATSURL("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var during []string
	for i := range 4 {
		during = append(during, postTelemetry(tokens[i%2], 5)...)
	}
	js, _ := jetstream.New(nc)
	sessionID := uuid.NewString()
	res := events.MatchResult{SessionID: sessionID, Cell: "eu-west-1", GameMode: "duel", DGSID: "drill-dgs",
		StartedAt: time.Now().Add(-time.Minute), EndedAt: time.Now(), WinnerTeam: -1, Reason: "time_limit",
		Players: []events.PlayerResult{{PlayerID: players[0], Team: 0}, {PlayerID: players[1], Team: 1}}}
	body, _ := json.Marshal(res)
	for range 2 { // a DGS retrying its publish
		msg := nats.NewMsg(events.MatchResultSubject("eu-west-1"))
		msg.Data = body
		msg.Header.Set(jetstream.MsgIDHeader, sessionID)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js.PublishMsg(pctx, msg)
		cancel()
		if err != nil {
			t.Fatalf("publish the result in the cut-off cell: %v", err)
		}
	}
	xp := func() (map[string]int64, error) {
		rows, err := pool.Query(ctx, `SELECT id::TEXT, xp FROM players WHERE id = ANY($1::UUID[])`, players)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				return nil, err
			}
			out[id] = v
		}
		return out, rows.Err()
	}
	// During the cut nothing arrives (checked for a while: the cut is real).
	for range 20 {
		if n, err := count(during); err != nil || n != 0 {
			t.Fatalf("%d events crossed a cut gateway (%v)", n, err)
		}
		if x, err := xp(); err != nil || x[players[0]] != 0 {
			t.Fatalf("result applied across a cut gateway: %v %v", x, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := st.RejoinCluster("eu-west-1"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if n, err := count(during); err != nil || n != len(during) {
			return fmt.Errorf("%d of %d events after the heal (%v)", n, len(during), err)
		}
		x, err := xp()
		if err != nil {
			return err
		}
		for _, p := range players {
			if x[p] == 0 {
				return fmt.Errorf("result not applied yet: xp %v", x)
			}
		}
		return nil
	})
	x, _ := xp()
	want := devstack.DevGlobal().Results.XPPerMatch
	for _, p := range players {
		if x[p] != want {
			t.Fatalf("player %s xp %d, want %d (the result exactly once)", p, x[p], want)
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log WHERE id = ANY($1::UUID[])`, append(before, during...)).Scan(&rows); err != nil || rows != len(before)+len(during) {
		t.Fatalf("event rows %d, want %d (%v)", rows, len(before)+len(during), err)
	}
}
