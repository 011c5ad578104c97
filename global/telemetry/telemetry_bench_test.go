package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// BenchmarkTelemetry: one op = one request of 100 events. "durable" is end
// to end: intake (validate, sync JetStream publish in the cell cluster) →
// sourced into the global cluster → sink → committed in game_event_log; the
// clock stops when the last row is in the database. intake_events/s stops
// when the last request was answered (stored in the cell's stream). "raw" is
// the same work without the intake: the same number of workers publishing
// the same encoded batches synchronously (one at a time per worker, with a
// message id, as the intake does) into a plain stream in the cell cluster.
// intake_ratio compares like with like: intake_events/s is measured with
// the sink stopped, as raw is; durable (and its ratio) with the sink running.
func BenchmarkTelemetry(b *testing.B) {
	r := newRigB(b)
	ctx := context.Background()
	jsEU := r.jsEU
	if _, err := jsEU.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"},
		Placement: &jetstream.Placement{Cluster: "eu-west-1"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	body := evs(100, "kill", time.Now())
	const workers = 4
	// At least 200 batches (20k events) whatever b.N is: one batch alone
	// measures the sink's polling interval, not its throughput.
	n := max(b.N, 200)
	b.ResetTimer()

	// raw: the batch the intake publishes, 100 events with ids and payloads.
	batch := events.TelemetryBatch{}
	for i := range 100 {
		batch.Events = append(batch.Events, events.TelemetryEvent{EventID: uuid.NewString(), PlayerID: uuid.NewString(),
			EventType: "kill", Timestamp: time.Now(), Payload: map[string]any{"i": i}, Cell: "eu-west-1"})
	}
	sample, _ := json.Marshal(batch)
	t0 := time.Now()
	var rawWG sync.WaitGroup
	for w := range workers {
		rawWG.Go(func() {
			for i := w; i < n; i += workers {
				msg := nats.NewMsg("raw.events")
				msg.Data = sample
				msg.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
				if _, err := jsEU.PublishMsg(ctx, msg); err != nil {
					b.Errorf("raw publish: %v", err)
					return
				}
			}
		})
	}
	rawWG.Wait()
	raw := float64(n*100) / time.Since(t0).Seconds()

	// Requests from `workers` goroutines through the intake; returns when
	// the last one was answered (stored in the cell's stream).
	intakeAll := func() time.Duration {
		t := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				p := uuid.NewString()
				for i := w; i < n; i += workers {
					if rec := post(r.intake, p, body); rec.Code != 202 {
						b.Errorf("post: %d %s", rec.Code, rec.Body)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(t)
	}
	rowsAtLeast := func(want int) {
		testenv.Eventually(b, 5*time.Minute, func() error {
			var got int
			if err := r.sc.Pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log`).Scan(&got); err != nil {
				return err
			}
			if got < want {
				return fmt.Errorf("%d of %d rows", got, want)
			}
			return nil
		})
	}
	var base int
	_ = r.sc.Pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log`).Scan(&base)

	// intake alone, under the same conditions as raw (the sink is not
	// running): only the intake's own work differs.
	intake := float64(n*100) / intakeAll().Seconds()

	// The sink drains that backlog, then runs end to end while the intake
	// publishes: durable stops when the last row is committed.
	stop := start(r.sink(b))
	defer stop()
	rowsAtLeast(base + n*100)
	t1 := time.Now()
	intakeAll()
	rowsAtLeast(base + 2*n*100)
	durable := float64(n*100) / time.Since(t1).Seconds()
	b.StopTimer()
	b.ReportMetric(durable, "durable_events/s")
	b.ReportMetric(intake, "intake_events/s")
	b.ReportMetric(intake/raw, "intake_ratio")
	b.ReportMetric(raw, "raw_sync_publish_events/s")
	b.ReportMetric(durable/raw, "ratio")
}
