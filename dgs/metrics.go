package dgs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/dgs/arena"
	"github.com/cellgrid/cellgrid/dgs/sdk"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/proto/events"
)

// startMetrics serves /healthz, /readyz (NATS connected, SDK not shut
// down) and /metrics (the arena's counters and the SDK state) on addr.
func startMetrics(addr string, game *arena.Server, kit *sdk.SDK, nc *nats.Conn, log *slog.Logger) (*httpapi.Server, error) {
	reg := httpapi.NewRegistry()
	st := game.Stats()
	counters := []struct {
		name, help string
		v          func() int64
	}{
		{"dgs_hellos_total", "Relay HELLOs consumed by the admission filter.", st.HellosSeen.Load},
		{"dgs_unauthorised_datagrams_total", "Datagrams dropped from addresses without an admitted HELLO.", st.Unauthorised.Load},
		{"dgs_joins_refused_total", "JOINs refused (bad token, wrong session, not in match).", st.Refused.Load},
		{"dgs_joins_total", "JOINs accepted.", st.Joined.Load},
		{"dgs_inputs_dropped_total", "Inputs dropped by a full per-player queue.", st.InputsDropped.Load},
		{"dgs_frames_dropped_total", "Outgoing frames dropped by a full queue.", st.FramesDropped.Load},
		{"dgs_malformed_streams_total", "Streams closed for a protocol error.", st.MalformedStreams.Load},
	}
	for _, c := range counters {
		v := c.v
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 {
			game.Stats() // refreshes the filter's counters
			return float64(v())
		}))
	}
	for _, state := range []events.DGSState{events.DGSScheduled, events.DGSReady, events.DGSAllocated, events.DGSShutdown} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dgs_state", Help: "1 for the server's current lifecycle state.", ConstLabels: prometheus.Labels{"state": string(state)},
		}, func() float64 {
			if cur, _ := kit.State(); cur == state {
				return 1
			}
			return 0
		}))
	}
	checks := []httpapi.Check{
		{Name: "nats", Fn: func(context.Context) error {
			if s := nc.Status(); s != nats.CONNECTED {
				return fmt.Errorf("nats %s", s)
			}
			return nil
		}},
		{Name: "lifecycle", Fn: func(context.Context) error {
			if cur, _ := kit.State(); cur == events.DGSShutdown {
				return fmt.Errorf("shutting down")
			}
			return nil
		}},
	}
	s, err := httpapi.New(httpapi.Config{Addr: addr}, httpapi.Deps{Registry: reg, Checks: checks, Log: log})
	if err != nil {
		return nil, fmt.Errorf("dgs: metrics: %w", err)
	}
	s.Start()
	return s, nil
}
