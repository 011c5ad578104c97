package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// BenchmarkTelemetry: one op = one request of 100 events. "durable" is end
// to end: intake (validate, sync JetStream publish in the cell cluster) →
// sourced into the global cluster → sink → committed in game_event_log; the
// clock stops when the last row is in the database. intake_events/s stops
// when the last request was answered (stored in the cell's stream). "raw" is async JetStream
// publishing of the same batches into a plain stream in the cell cluster.
func BenchmarkTelemetry(b *testing.B) {
	r := newRigB(b)
	ctx := context.Background()
	jsEU := r.jsEU
	if _, err := jsEU.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"},
		Placement: &jetstream.Placement{Cluster: "eu-west-1"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	stop := start(r.sink(b))
	defer stop()
	body := evs(100, "kill", time.Now())
	const workers = 4
	// At least 200 batches (20k events) whatever b.N is: one batch alone
	// measures the sink's polling interval, not its throughput.
	n := max(b.N, 200)
	b.ResetTimer()

	// raw
	t0 := time.Now()
	// The same batch the intake publishes: 100 events with ids and payloads.
	batch := events.TelemetryBatch{}
	for i := range 100 {
		batch.Events = append(batch.Events, events.TelemetryEvent{EventID: uuid.NewString(), PlayerID: uuid.NewString(),
			EventType: "kill", Timestamp: time.Now(), Payload: map[string]any{"i": i}, Cell: "eu-west-1"})
	}
	sample, _ := json.Marshal(batch)
	for i := 0; i < n; i++ {
		if _, err := jsEU.PublishAsync("raw.events", sample); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-jsEU.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("raw publish did not complete")
	}
	raw := float64(n*100) / time.Since(t0).Seconds()

	// durable
	var base int
	_ = r.sc.Pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log`).Scan(&base)
	t1 := time.Now()
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
	intake := float64(n*100) / time.Since(t1).Seconds() // stored in the cell's stream
	want := base + n*100
	testenv.Eventually(b, 5*time.Minute, func() error {
		var n int
		if err := r.sc.Pool.QueryRow(ctx, `SELECT count(*) FROM game_event_log`).Scan(&n); err != nil {
			return err
		}
		if n < want {
			return fmt.Errorf("%d of %d rows", n, want)
		}
		return nil
	})
	durable := float64(n*100) / time.Since(t1).Seconds()
	b.StopTimer()
	b.ReportMetric(durable, "durable_events/s")
	b.ReportMetric(intake, "intake_events/s")
	b.ReportMetric(intake/raw, "intake_ratio")
	b.ReportMetric(raw, "raw_publish_events/s")
	b.ReportMetric(durable/raw, "ratio")
}
