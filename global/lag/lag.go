package lag

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// scrapeBudget bounds the JetStream calls of one scrape.
const scrapeBudget = 3 * time.Second

// Collector reports, per stream and durable consumer, the messages not yet
// delivered (pending), those delivered but not acknowledged (ack pending),
// and, while messages are pending, the seconds since the consumer's last
// acknowledgement (a consumer that stopped).
type Collector struct {
	js      jetstream.JetStream
	streams []string
	log     *slog.Logger

	pending, ackPending, idle, up *prometheus.Desc
}

// New returns a collector over the named streams (every stream the
// account sees when streams is empty).
func New(js jetstream.JetStream, streams []string, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.Default()
	}
	labels := []string{"stream", "consumer"}
	return &Collector{
		js: js, streams: streams, log: log,
		pending: prometheus.NewDesc("cellgrid_jetstream_consumer_pending_messages",
			"Messages of the stream the durable consumer has not been delivered yet.", labels, nil),
		ackPending: prometheus.NewDesc("cellgrid_jetstream_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not acknowledged yet.", labels, nil),
		idle: prometheus.NewDesc("cellgrid_jetstream_consumer_stalled_seconds",
			"Seconds since the consumer last acknowledged while messages are pending (0 when none are).", labels, nil),
		up: prometheus.NewDesc("cellgrid_jetstream_lag_scrape_ok",
			"1 when the last scrape read every consumer's info, 0 when JetStream did not answer.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.idle
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeBudget)
	defer cancel()
	ok := 1.0
	streams := c.streams
	if len(streams) == 0 {
		names := c.js.StreamNames(ctx)
		for n := range names.Name() {
			streams = append(streams, n)
		}
		if names.Err() != nil {
			ok = 0
		}
	}
	now := time.Now()
	for _, name := range streams {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			ok = 0
			continue
		}
		infos := s.ListConsumers(ctx)
		for ci := range infos.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: nobody alerts on those
			}
			stalled := 0.0
			if ci.NumPending > 0 && ci.AckFloor.Last != nil {
				stalled = now.Sub(*ci.AckFloor.Last).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ci.NumPending), name, ci.Name)
			ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(ci.NumAckPending), name, ci.Name)
			ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, stalled, name, ci.Name)
		}
		if infos.Err() != nil {
			ok = 0
		}
	}
	if ok == 0 {
		c.log.Debug("jetstream lag scrape incomplete")
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
}
