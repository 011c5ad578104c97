package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	celltelemetry "github.com/cellgrid/cellgrid/cell/telemetry"
	"github.com/cellgrid/cellgrid/global/telemetry"
	"github.com/cellgrid/cellgrid/internal/natsembed"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func post(h http.Handler, player string, body any) *httptest.ResponseRecorder {
	b, _ := json.Marshal(body)
	req := httptest.NewRequest("POST", "/game/telemetry", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if player != "" {
		req = testenv.AsPlayer(req, player)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func evs(n int, typ string, at time.Time) map[string]any {
	list := make([]map[string]any, n)
	for i := range list {
		list[i] = map[string]any{"event_type": typ, "timestamp": at.Format(time.RFC3339Nano), "payload": map[string]any{"i": i}}
	}
	return map[string]any{"events": list}
}

type rig struct {
	sc     *testenv.Database
	intake *celltelemetry.Intake
	jsG    jetstream.JetStream
	jsEU   jetstream.JetStream
	rawSC  *natsembed.SuperCluster
}

func newRig(t *testing.T) *rig { return newRigB(t) }

func newRigB(t testing.TB) *rig {
	d := testenv.NewDatabase(t) // first: the shared PostgreSQL outlives the test
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global", "eu-west-1")
	jsEU, _ := jetstream.New(testenv.Connect(t, sc.Server("eu-west-1")))
	jsG, _ := jetstream.New(testenv.Connect(t, sc.Server("global")))
	h, err := celltelemetry.New(celltelemetry.Config{Cell: "eu-west-1", EventsPerSecond: 1e6, Burst: 1e6},
		celltelemetry.Deps{JS: jsEU})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.EnsureStream(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &rig{sc: d, intake: h, jsG: jsG, jsEU: jsEU, rawSC: sc}
}

func (r *rig) sink(t testing.TB, admins ...string) *telemetry.Telemetry {
	s, err := telemetry.New(telemetry.Config{Cells: []string{"eu-west-1"}, MaxScoreEventsPerMinute: 120, AdminPlayerIDs: admins},
		telemetry.Deps{DB: r.sc.Pool, JS: r.jsG, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sinkOn is a sink on its own JetStream context (a connection the test can
// cut) with the given AckWait.
func (r *rig) sinkOn(t testing.TB, js jetstream.JetStream, ackWait time.Duration, batchMessages int) *telemetry.Telemetry {
	s, err := telemetry.New(telemetry.Config{Cells: []string{"eu-west-1"}, AckWait: ackWait, BatchMessages: batchMessages},
		telemetry.Deps{DB: r.sc.Pool, JS: js, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(s *telemetry.Telemetry) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

func (r *rig) count(t *testing.T) int {
	var n int
	if err := r.sc.Pool.QueryRow(context.Background(), `SELECT count(*) FROM game_event_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSinkSurvivesHardStop: the first sink is killed mid-stream (its NATS
// connection closed under it: no ack, no nak, whatever transaction is in
// flight rolls back), more events arrive while no sink runs, and a second
// sink takes over. What game_event_log holds must be exactly what the
// intake accepted: every accepted id once, nothing else.
func TestSinkSurvivesHardStop(t *testing.T) {
	r := newRig(t)
	const batches, per = 120, 50
	var mu sync.Mutex
	accepted := map[string]bool{}
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			w := post(r.intake, uuid.NewString(), evs(per, "kill", time.Now()))
			var out struct {
				EventIDs []string `json:"event_ids"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 202 || err != nil || len(out.EventIDs) != per {
				t.Errorf("batch %d: %d %v %s", i, w.Code, err, w.Body)
				return
			}
			mu.Lock()
			for _, id := range out.EventIDs {
				accepted[id] = true
			}
			mu.Unlock()
		}
	}
	// The first half is published while the first sink runs.
	firstHalf := make(chan struct{})
	go func() { defer close(firstHalf); publish(0, batches/2) }()
	// A short AckWait: what the killed sink had fetched comes back quickly.
	// Small fetches (2 messages): the first sink needs many transactions.
	nc1 := testenv.Connect(t, r.rawSC.Server("global"))
	js1, _ := jetstream.New(nc1)
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { done1 <- r.sinkOn(t, js1, 2*time.Second, 2).Run(ctx1) }()
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := r.count(t); n == 0 {
			return fmt.Errorf("nothing written yet")
		}
		return nil
	})
	nc1.Close() // hard stop: the sink's acks and naks can no longer reach the server
	cancel1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	mid := r.count(t)
	<-firstHalf
	publish(batches/2, batches)
	if t.Failed() {
		t.FailNow()
	}
	if mid == 0 || mid >= len(accepted) {
		t.Fatalf("the first sink wrote %d of %d events: not stopped mid-stream", mid, len(accepted))
	}

	nc2 := testenv.Connect(t, r.rawSC.Server("global"))
	js2, _ := jetstream.New(nc2)
	stop2 := start(r.sinkOn(t, js2, 2*time.Second, 0))
	defer func() {
		if err := stop2(); err != nil {
			t.Error(err)
		}
	}()
	testenv.Eventually(t, 60*time.Second, func() error {
		if n := r.count(t); n != len(accepted) {
			return fmt.Errorf("%d rows, %d accepted", n, len(accepted))
		}
		return nil
	})
	rows, err := r.sc.Pool.Query(context.Background(), `SELECT id::TEXT FROM game_event_log`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if !accepted[id] {
			t.Fatalf("row %s was never accepted by the intake", id)
		}
		stored[id] = true
	}
	if len(stored) != len(accepted) {
		t.Fatalf("stored %d distinct ids, accepted %d", len(stored), len(accepted))
	}
	t.Logf("the first sink wrote %d of %d events before it was killed", mid, len(accepted))
}

func TestScoreRateRuleAndAdmin(t *testing.T) {
	r := newRig(t)
	admin, cheat, honest := uuid.NewString(), uuid.NewString(), uuid.NewString()
	s := r.sink(t, admin)
	stop := start(s)
	defer stop()
	minute := time.Now().UTC().Truncate(time.Minute)
	at := minute.Add(10 * time.Second)
	if at.After(time.Now()) {
		at = time.Now()
	}
	// 121 score events in one minute over two requests: flagged once.
	for _, n := range []int{100, 21} {
		if w := post(r.intake, cheat, evs(n, "score", at)); w.Code != 202 {
			t.Fatalf("post: %d %s", w.Code, w.Body)
		}
	}
	if w := post(r.intake, honest, evs(100, "score", at)); w.Code != 202 {
		t.Fatal(w.Code)
	}
	mux := http.NewServeMux()
	s.Register(mux, testenv.TrustPlayerHeader)
	get := func(player string) (int, []telemetry.Flag) {
		req := httptest.NewRequest("GET", "/admin/flags", nil)
		req.Header.Set(testenv.PlayerHeader, player)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		var out struct{ Flags []telemetry.Flag }
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out.Flags
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		code, flags := get(admin)
		if code != 200 || len(flags) != 1 {
			return fmt.Errorf("%d %+v", code, flags)
		}
		f := flags[0]
		if f.PlayerID.String() != cheat || f.Rule != telemetry.RuleScoreRate || !f.WindowStart.Equal(minute) || f.Observed != 121 {
			return fmt.Errorf("flag %+v", f)
		}
		return nil
	})
	if code, _ := get(cheat); code != 403 {
		t.Fatalf("non-admin: %d", code)
	}
}
