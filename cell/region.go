package cell

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/proto/events"
)

// FailedOver reports whether an operator failed the cell's region over
// (`cellgrid region failover`), and the record if so. Such a cell refuses
// new tickets with a redirect; queued tickets and running matches finish.
func (c *Cell) FailedOver() (events.RegionFailover, bool) {
	if f := c.failover.Load(); f != nil {
		return *f, true
	}
	return events.RegionFailover{}, false
}

// runRegionWatch follows the cell's region in events.RegionBucket (written
// by the global layer). Until the bucket exists the cell takes tickets; if
// the bucket becomes unreachable (gateway cut), the last state holds.
func (c *Cell) runRegionWatch(ctx context.Context) error {
	js, err := jetstream.New(c.deps.NATS)
	if err != nil {
		return err
	}
	retry := max(c.cfg.HeartbeatInterval, 100*time.Millisecond)
	for {
		kv, err := js.KeyValue(ctx, events.RegionBucket)
		if err == nil {
			if err = c.watchRegion(ctx, kv); err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Debug("region bucket not readable yet", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

func (c *Cell) watchRegion(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.Watch(ctx, c.cfg.Region)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("region watch ended")
			}
			if e == nil {
				continue // initial values delivered
			}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				var rf events.RegionFailover
				if err := json.Unmarshal(e.Value(), &rf); err != nil {
					c.log.Warn("malformed region failover record ignored", "err", err)
					continue
				}
				c.failover.Store(&rf)
				c.log.Warn("region failed over: refusing new tickets", "region", rf.Region, "to", rf.To)
			default:
				if c.failover.Swap(nil) != nil {
					c.log.Info("region restored: taking new tickets")
				}
			}
		}
	}
}

// Redirect is the hint in a refused join: the cell to join instead.
type Redirect struct {
	Cell   string `json:"cell"`
	Region string `json:"region"`
	API    string `json:"api"`
}

// failedOverError refuses a join in a failed-over region, naming the
// redirect cell with the lowest latency the client reported (the first
// one when it reported none of them).
func (c *Cell) failedOverError(rf events.RegionFailover, latencies map[string]int) error {
	var best *events.CellRef
	bestMS := 0
	for i := range rf.Redirect {
		ref := &rf.Redirect[i]
		ms, ok := latencies[ref.ID]
		switch {
		case best == nil:
			best, bestMS = ref, ms
			if !ok {
				bestMS = -1
			}
		case ok && (bestMS < 0 || ms < bestMS):
			best, bestMS = ref, ms
		}
	}
	e := &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "region_failed_over",
		Message: "this region is failed over: join the redirect cell", RetryAfter: c.cfg.RetryAfter}
	if best != nil {
		e.Details = map[string]Redirect{"redirect": {Cell: best.ID, Region: best.Region, API: best.API}}
	}
	return e
}
