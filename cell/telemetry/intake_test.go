package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

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

func TestIntakeValidation(t *testing.T) {
	_, nc := testenv.NewNATS(t, "eu-west-1")
	js, _ := jetstream.New(nc)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	h, err := New(Config{
		Cell: "eu-west-1", EventsPerSecond: 1, Burst: 150, MaxBody: 32 << 10,
		Now: func() time.Time { return now },
	}, Deps{JS: js, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	p := uuid.NewString()
	cases := []struct {
		name   string
		player string
		body   any
		want   int
	}{
		{"no token", "", evs(1, "kill", now), 401},
		{"empty", p, map[string]any{"events": []any{}}, 400},
		{"too many", p, evs(101, "kill", now), 400},
		{"future", p, evs(1, "kill", now.Add(2*time.Minute)), 400},
		{"too old", p, evs(1, "kill", now.Add(-25*time.Hour)), 400},
		{"bad type", p, evs(1, "Kill Me", now), 400},
		{"unknown field", p, map[string]any{"events": []any{map[string]any{"event_type": "kill", "timestamp": now, "x": 1}}}, 400},
		{"bad session", p, map[string]any{"events": []any{map[string]any{"event_type": "kill", "timestamp": now, "session_id": "nope"}}}, 400},
		{"too large", p, map[string]any{"events": []any{map[string]any{"event_type": "kill", "timestamp": now, "payload": map[string]any{"s": strings.Repeat("x", 40<<10)}}}}, 413},
		{"ok", p, evs(100, "kill", now.Add(30*time.Second)), 202},
		{"rate limited", p, evs(100, "kill", now), 429},
		{"other player not limited", uuid.NewString(), evs(3, "kill", now), 202},
	}
	for _, c := range cases {
		if w := post(h, c.player, c.body); w.Code != c.want {
			t.Fatalf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.want)
		}
	}
	st, err := js.Stream(ctx, events.TelemetryStream("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var b events.TelemetryBatch
	if err := json.Unmarshal(msg.Data, &b); err != nil || len(b.Events) != 100 || b.Events[0].PlayerID != p || b.Events[0].Cell != "eu-west-1" {
		t.Fatalf("stored batch: %v %+v", err, b.Events[:1])
	}
	if _, err := uuid.Parse(b.Events[0].EventID); err != nil {
		t.Fatalf("event id %q", b.Events[0].EventID)
	}
}
