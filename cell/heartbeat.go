package cell

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/events"
)

// Draining reports whether the cell refuses new tickets (running matches
// and queued tickets carry on).
func (c *Cell) Draining() bool { return c.draining.Load() }

// SetDraining starts or stops draining.
func (c *Cell) SetDraining(on bool) {
	if c.draining.Swap(on) != on {
		c.log.Info("cell drain state changed", "draining", on)
	}
}

func (c *Cell) state() string {
	if c.Draining() {
		return events.CellDraining
	}
	return events.CellHealthy
}

// runHeartbeat announces the cell on events.CellHeartbeatSubject every
// HeartbeatInterval and answers drain requests on CellDrainSubject.
func (c *Cell) runHeartbeat(ctx context.Context) error {
	sub, err := c.deps.NATS.Subscribe(events.CellDrainSubject(c.cfg.ID), func(m *nats.Msg) {
		switch string(m.Data) {
		case "drain":
			c.SetDraining(true)
		case "undrain":
			c.SetDraining(false)
		default:
			_ = m.Respond([]byte("error: want drain or undrain"))
			return
		}
		_ = m.Respond([]byte(c.state()))
		c.publishHeartbeat()
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		c.publishHeartbeat()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Cell) publishHeartbeat() {
	b, _ := json.Marshal(events.CellHeartbeat{
		ID: c.cfg.ID, Region: c.cfg.Region, API: c.cfg.PublicURL, Relay: c.RelayAddr(), State: c.state(), At: time.Now(),
	})
	if err := c.deps.NATS.Publish(events.CellHeartbeatSubject(c.cfg.ID), b); err != nil {
		c.log.Warn("cell heartbeat", "err", err)
	}
}
