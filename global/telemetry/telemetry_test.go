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
	return &rig{sc: d, intake: h, jsG: jsG, jsEU: jsEU}
}

func (r *rig) sink(t testing.TB, admins ...string) *telemetry.Telemetry {
	s, err := telemetry.New(telemetry.Config{Cells: []string{"eu-west-1"}, MaxScoreEventsPerMinute: 120, AdminPlayerIDs: admins},
		telemetry.Deps{DB: r.sc.Pool, JS: r.jsG, Metrics: prometheus.NewRegistry()})
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

func (r *rig) count(t *testing.T) (int, int) {
	var n, distinct int
	if err := r.sc.Pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT id) FROM game_event_log`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	return n, distinct
}

func TestSinkSurvivesRestart(t *testing.T) {
	r := newRig(t)
	const batches, per = 120, 50
	var mu sync.Mutex
	ids := map[string]bool{}
	published := make(chan int, batches)
	go func() {
		defer close(published)
		for i := range batches {
			w := post(r.intake, uuid.NewString(), evs(per, "kill", time.Now()))
			if w.Code != 202 {
				t.Errorf("batch %d: %d %s", i, w.Code, w.Body)
				return
			}
			var out struct {
				EventIDs []string `json:"event_ids"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &out)
			mu.Lock()
			for _, id := range out.EventIDs {
				ids[id] = true
			}
			mu.Unlock()
			published <- i
		}
	}()
	stop1 := start(r.sink(t))
	// Stop the first sink mid-stream: some events written, not all published.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n, _ := r.count(t); n == 0 {
			return fmt.Errorf("nothing written yet")
		}
		return nil
	})
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	mid, _ := r.count(t)
	stop2 := start(r.sink(t))
	defer func() {
		if err := stop2(); err != nil {
			t.Error(err)
		}
	}()
	for range published {
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		n, distinct := r.count(t)
		if n != batches*per || distinct != n {
			return fmt.Errorf("%d rows (%d distinct), want %d", n, distinct, batches*per)
		}
		return nil
	})
	t.Logf("first sink wrote %d of %d events before it stopped", mid, batches*per)
	rows, err := r.sc.Pool.Query(context.Background(), `SELECT id::TEXT FROM game_event_log`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		if !ids[id] {
			t.Fatalf("row %s was never returned by the intake", id)
		}
	}
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
