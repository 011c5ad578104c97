package lag

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestCollectorReportsConsumerLag(t *testing.T) {
	_, nc := testenv.NewNATS(t, "global")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MATCH_GLOBAL", Subjects: []string{"lagtest.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "results", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy}); err != nil { // ephemeral: not reported
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "lagtest.result", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(js, nil, nil))
	want := func(pending, ackPending int) {
		t.Helper()
		exp := fmt.Sprintf(`
# HELP cellgrid_jetstream_consumer_ack_pending_messages Messages delivered to the consumer and not acknowledged yet.
# TYPE cellgrid_jetstream_consumer_ack_pending_messages gauge
cellgrid_jetstream_consumer_ack_pending_messages{consumer="results",stream="MATCH_GLOBAL"} %d
# HELP cellgrid_jetstream_consumer_pending_messages Messages of the stream the durable consumer has not been delivered yet.
# TYPE cellgrid_jetstream_consumer_pending_messages gauge
cellgrid_jetstream_consumer_pending_messages{consumer="results",stream="MATCH_GLOBAL"} %d
# HELP cellgrid_jetstream_lag_scrape_ok 1 when the last scrape read every consumer's info, 0 when JetStream did not answer.
# TYPE cellgrid_jetstream_lag_scrape_ok gauge
cellgrid_jetstream_lag_scrape_ok 1
`, ackPending, pending)
		// The server updates a consumer's counts just after a publish or
		// an ack is answered: wait for them.
		testenv.Eventually(t, 10*time.Second, func() error {
			return testutil.GatherAndCompare(reg, strings.NewReader(exp),
				"cellgrid_jetstream_consumer_pending_messages", "cellgrid_jetstream_consumer_ack_pending_messages", "cellgrid_jetstream_lag_scrape_ok")
		})
	}
	want(5, 0)
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if n < 2 {
			_ = m.Ack()
		}
		n++
	}
	if n != 3 {
		t.Fatalf("fetched %d, want 3", n)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		ci, err := cons.Info(ctx)
		if err != nil || ci.NumAckPending != 1 {
			return fmt.Errorf("ack pending %v %v", ci, err)
		}
		return nil
	})
	want(2, 1)
}
