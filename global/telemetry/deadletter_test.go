package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestPoisonEventIsDeadLettered publishes straight to the cell's stream
// (past the intake's validation, as a buggy or hostile publisher would)
// events PostgreSQL refuses: a JSONB payload with \u0000 and an event_type
// with a NUL byte, in one batch with a normal event, then a normal event in
// a later batch. The normal events must be durable within seconds and the
// refused ones must be in telemetry_dead_letter with the database's reason.
func TestPoisonEventIsDeadLettered(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := time.Now().UTC()
	player := uuid.NewString()
	ev := func(typ string, payload map[string]any) events.TelemetryEvent {
		return events.TelemetryEvent{EventID: uuid.NewString(), PlayerID: player, EventType: typ,
			Timestamp: now, Payload: payload, Cell: "eu-west-1"}
	}
	nulPayload := ev("chat", map[string]any{"text": "hi\x00there"})
	nulType := ev("kill\x00", map[string]any{"i": 1})
	sibling := ev("kill", map[string]any{"i": 2})
	later := ev("kill", map[string]any{"i": 3})
	publish := func(evs ...events.TelemetryEvent) {
		data, err := json.Marshal(events.TelemetryBatch{Events: evs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.jsEU.Publish(ctx, events.TelemetrySubject("eu-west-1"), data); err != nil {
			t.Fatal(err)
		}
	}
	publish(nulPayload, sibling, nulType)
	publish(later)
	// A message that is not a batch at all is kept too, then terminated.
	if _, err := r.jsEU.Publish(ctx, events.TelemetrySubject("eu-west-1"), []byte(`{"events": 42}`)); err != nil {
		t.Fatal(err)
	}

	stop := start(r.sink(t))
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	testenv.Eventually(t, 15*time.Second, func() error {
		var n int
		if err := r.sc.Pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log WHERE id = ANY($1::UUID[])`,
			[]string{sibling.EventID, later.EventID}).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d of the 2 normal events durable", n)
		}
		return nil
	})
	reasons := map[string]string{}
	testenv.Eventually(t, 15*time.Second, func() error {
		rows, err := r.sc.Pool.Query(ctx, `SELECT id::TEXT, reason, raw FROM telemetry_dead_letter`)
		if err != nil {
			return err
		}
		defer rows.Close()
		clear(reasons)
		for rows.Next() {
			var id, reason string
			var raw []byte
			if err := rows.Scan(&id, &reason, &raw); err != nil {
				return err
			}
			if len(raw) == 0 {
				return fmt.Errorf("dead letter %s without raw bytes", id)
			}
			reasons[id] = reason
		}
		if len(reasons) != 3 {
			return fmt.Errorf("dead letters %v, want the 2 refused events and the undecodable message", reasons)
		}
		return rows.Err()
	})
	for _, e := range []events.TelemetryEvent{nulPayload, nulType} {
		if reason := reasons[e.EventID]; !strings.Contains(reason, "SQLSTATE 22") {
			t.Errorf("dead letter %s reason %q, want the database's data exception", e.EventID, reason)
		}
	}
	var inLog int
	if err := r.sc.Pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log`).Scan(&inLog); err != nil || inLog != 2 {
		t.Fatalf("game_event_log holds %d rows (%v), want the 2 normal events", inLog, err)
	}
}
