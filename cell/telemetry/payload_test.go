package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

func postRaw(h *Intake, player string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/game/telemetry", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req = req.WithContext(accesstoken.WithClaims(req.Context(), accesstoken.Claims{PlayerID: player}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestIntakeRefusesWhatTheStoreCannotHold: payloads the event log cannot
// store (NUL in a key or a string, invalid UTF-8) or that are too deep or
// too large are refused with 400 and a JSON error, and nothing of them
// reaches the stream.
func TestIntakeRefusesWhatTheStoreCannotHold(t *testing.T) {
	_, nc := testenv.NewNATS(t, "eu-west-1")
	js, _ := jetstream.New(nc)
	now := time.Now().UTC()
	h, err := New(Config{Cell: "eu-west-1", MaxPayloadBytes: 1024, MaxPayloadDepth: 4},
		Deps{JS: js, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	ts := `"` + now.Format(time.RFC3339Nano) + `"`
	one := func(payload string) []byte {
		return []byte(`{"events":[{"event_type":"kill","timestamp":` + ts + `,"payload":{"i":1}},` +
			`{"event_type":"chat","timestamp":` + ts + `,"payload":` + payload + `}]}`)
	}
	nested := func(n int) string { return strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n) }
	cases := []struct {
		name string
		body []byte
		code string
	}{
		{"NUL in a value", one(`{"text":"hi\u0000there"}`), "invalid_event"},
		{"NUL in a key", one(`{"te\u0000xt":"hi"}`), "invalid_event"},
		{"NUL deep in an array", one(`{"a":[1,["x\u0000"]]}`), "invalid_event"},
		{"invalid UTF-8", one("{\"text\":\"caf\xe9\"}"), "invalid_utf8"},
		{"invalid UTF-8 in a key", one("{\"\xff\":1}"), "invalid_utf8"},
		{"too deep", one(nested(5)), "invalid_event"},
		{"too deep in arrays", one(`{"a":[[[[1]]]]}`), "invalid_event"},
		{"payload too large", one(`{"s":"` + strings.Repeat("x", 1100) + `"}`), "invalid_event"},
	}
	p := uuid.NewString()
	for _, c := range cases {
		w := postRaw(h, p, c.body)
		var out struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != 400 || out.Error.Code != c.code || out.Error.Message == "" {
			t.Errorf("%s: %d %s, want 400 %s", c.name, w.Code, w.Body, c.code)
		}
	}
	// At the limits: accepted.
	for _, ok := range []string{nested(4), `{"s":"` + strings.Repeat("x", 900) + `","u":"caf\u00e9 ✓"}`} {
		if w := postRaw(h, p, one(ok)); w.Code != 202 {
			t.Errorf("payload %.40s…: %d %s, want 202", ok, w.Code, w.Body)
		}
	}
	st, err := js.Stream(ctx, events.TelemetryStream("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d messages in the stream, want only the 2 accepted requests", info.State.Msgs)
	}
}
