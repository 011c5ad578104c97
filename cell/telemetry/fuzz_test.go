package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// FuzzIntakeParse feeds arbitrary bodies to the intake's decoder and
// validation. A refusal is always a 4xx *httpapi.Error; whatever is
// accepted can be published and stored: it encodes, as valid UTF-8, without
// a \u0000 escape (which PostgreSQL's JSONB refuses), within the limits.
// Seeds: testdata/fuzz/FuzzIntakeParse and the f.Add calls.
func FuzzIntakeParse(f *testing.F) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ts := now.Format(time.RFC3339Nano)
	for _, s := range []string{
		`{"events":[{"event_type":"kill","timestamp":"` + ts + `","payload":{"i":1,"a":[1,"x",{"b":null}]}}]}`,
		`{"events":[{"event_type":"chat","timestamp":"` + ts + `","payload":{"t":"hi\u0000"}}]}`,
		`{"events":[{"event_type":"chat","timestamp":"` + ts + `","session_id":"6f1c3c4e-0000-4000-8000-000000000000"}]}`,
		`{"events":[]}`,
		`{"events":[{"event_type":"x","timestamp":"` + ts + `","payload":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}}}}}]}`,
		"{\"events\":[{\"event_type\":\"kill\",\"timestamp\":\"" + ts + "\",\"payload\":{\"\xff\":1}}]}",
	} {
		f.Add([]byte(s))
	}
	cfg, err := Config{Cell: "eu-west-1", Now: func() time.Time { return now }, MaxBody: 16 << 10}.withDefaults()
	if err != nil {
		f.Fatal(err)
	}
	h := &Intake{cfg: cfg}
	player := uuid.MustParse("0b6f2a4e-3c1d-4e5f-8a9b-1c2d3e4f5a6b")
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/game/telemetry", bytes.NewReader(body))
		batch, err := h.parse(httptest.NewRecorder(), r, player, now)
		if err != nil {
			var he *httpapi.Error
			if !errors.As(err, &he) || he.Status < 400 || he.Status >= 500 {
				t.Fatalf("refusal is not a 4xx API error: %#v", err)
			}
			return
		}
		if n := len(batch.Events); n < 1 || n > cfg.MaxEvents {
			t.Fatalf("accepted %d events", n)
		}
		out, err := json.Marshal(batch)
		if err != nil {
			t.Fatalf("accepted batch does not encode: %v", err)
		}
		if !utf8.Valid(out) || bytes.Contains(out, []byte(`\u0000`)) {
			t.Fatalf("accepted batch the event log cannot store: %q", out)
		}
		for _, e := range batch.Events {
			if !typeRe.MatchString(e.EventType) || e.PlayerID != player.String() {
				t.Fatalf("accepted event %+v", e)
			}
			if err := checkPayload(e.Payload, cfg.MaxPayloadDepth, cfg.MaxPayloadBytes); err != nil {
				t.Fatalf("accepted payload fails its own check: %v", err)
			}
		}
	})
}
