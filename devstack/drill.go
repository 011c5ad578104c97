package devstack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cellgrid/cellgrid/internal/wan"
)

// cellStops lets a drill stop one cell of a running stack, as if its
// process died, while the rest runs on.
type cellStops struct {
	mu      sync.Mutex
	stops   map[string]context.CancelFunc // guarded by mu
	stopped map[string]bool               // guarded by mu: stopped by StopCell
}

// stoppableCell wraps a cell's Run so StopCell can end it alone.
func (st *Stack) stoppableCell(id string, run func(context.Context) error) func(context.Context) error {
	return func(parent context.Context) error {
		ctx, cancel := context.WithCancel(parent)
		defer cancel()
		st.stops.mu.Lock()
		if st.stops.stops == nil {
			st.stops.stops = map[string]context.CancelFunc{}
		}
		st.stops.stops[id] = cancel
		st.stops.mu.Unlock()
		err := run(ctx)
		st.stops.mu.Lock()
		stopped := st.stops.stopped[id]
		st.stops.mu.Unlock()
		if stopped {
			// A drill stopped this cell on purpose: the rest runs on, and
			// the supervisor must not see it end before the stack does.
			if err != nil {
				st.log.Warn("stopped cell ended with an error", "cell", id, "err", err)
			}
			<-parent.Done()
			return nil
		}
		return err
	}
}

// StopCell stops one running cell (its API, relay, matchmaker and game
// servers); the rest of the stack keeps running.
func (st *Stack) StopCell(id string) error {
	st.stops.mu.Lock()
	stop, ok := st.stops.stops[id]
	if ok {
		if st.stops.stopped == nil {
			st.stops.stopped = map[string]bool{}
		}
		st.stops.stopped[id] = true
	}
	st.stops.mu.Unlock()
	if !ok {
		return fmt.Errorf("stop cell %s: not running", id)
	}
	stop()
	return nil
}

// CutRegion cuts a cell off as a regional outage would: the player's link
// to its relay and beacon blackholed, its NATS gateway cut, its process
// stopped. It needs a stack started with a WAN.
func (st *Stack) CutRegion(id string) error {
	l, gw := st.WANLink(id), st.GatewayProxy(id)
	if l == nil || gw == nil {
		return errors.New("cut region: the stack has no WAN (start it with Config.WAN)")
	}
	if err := l.SetPaths(wan.Path{Blackhole: true}, wan.Path{Blackhole: true}); err != nil {
		return err
	}
	if err := st.IsolateCluster(id); err != nil {
		return err
	}
	return st.StopCell(id)
}

// HealRegionNetwork undoes CutRegion's network part (the cell stays
// stopped): the gateway comes back so what the region's NATS cluster
// stored reaches the global layer.
func (st *Stack) HealRegionNetwork(id string) error {
	l, gw := st.WANLink(id), st.GatewayProxy(id)
	if l == nil || gw == nil {
		return errors.New("heal region: the stack has no WAN")
	}
	p := st.wan.cfg.playerPath(id)
	if err := l.SetPaths(p, p); err != nil {
		return err
	}
	return st.RejoinCluster(id)
}

// DrillWAN is the layout of `cellgrid drill failover`: every region within
// the game modes' latency limit of the player, so bots play in all three
// and the next region can take the cut one's players.
func DrillWAN() *WAN {
	w := DefaultWAN()
	w.Player = map[string]time.Duration{
		"eu-west-1": 20 * time.Millisecond, "us-east-1": 40 * time.Millisecond, "ap-south-1": 60 * time.Millisecond,
	}
	return w
}
