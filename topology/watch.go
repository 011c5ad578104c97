package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/events"
)

// Watch keeps r current from the cells' heartbeats on NATS: a cell that
// announces itself is added (adding a cell needs nothing central), its
// state follows what it reports (healthy or draining), and a cell silent
// for longer than timeout is marked failed until it speaks again. It
// returns when ctx ends.
func (r *Registry) Watch(ctx context.Context, nc *nats.Conn, timeout time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	beats := make(chan events.CellHeartbeat, 256)
	sub, err := nc.Subscribe(events.CellHeartbeatSubject, func(m *nats.Msg) {
		var hb events.CellHeartbeat
		if err := json.Unmarshal(m.Data, &hb); err != nil || hb.ID == "" {
			return // malformed: ignored
		}
		select {
		case beats <- hb:
		default: // the next beat will do
		}
	})
	if err != nil {
		return fmt.Errorf("topology watch: %w", err)
	}
	defer sub.Unsubscribe()
	t := time.NewTicker(timeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case hb := <-beats:
			state := hb.State
			if state != StateDraining {
				state = StateHealthy
			}
			r.heard(Cell{ID: hb.ID, Region: hb.Region, API: hb.API, Relay: hb.Relay, Beacon: hb.Relay, State: state}, time.Now())
		case now := <-t.C:
			for _, id := range r.silentSince(now.Add(-timeout)) {
				log.Warn("cell missed its heartbeats: marked failed", "cell", id)
			}
		}
	}
}

// heard records a heartbeat of c at now.
func (r *Registry) heard(c Cell, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, known := r.cells[c.ID]; !known {
		r.notifyLocked()
	}
	r.cells[c.ID] = c
	r.lastSeen[c.ID] = now
}

// silentSince marks failed every cell last heard before cutoff that is not
// failed yet, and returns their ids.
func (r *Registry) silentSince(cutoff time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var failed []string
	for id, c := range r.cells {
		if seen, ok := r.lastSeen[id]; ok && seen.Before(cutoff) && c.State != StateFailed {
			c.State = StateFailed
			r.cells[id] = c
			failed = append(failed, id)
		}
	}
	return failed
}
