package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/events"
)

// What the fleet view keeps, and for how long.
const (
	dgsSilence     = 5 * time.Second // a DGS not heard for this long is gone
	sessionMaxAge  = 2 * time.Hour   // a session never reported ended is forgotten
	matchRateSpan  = time.Minute     // matches per minute look back this far
	maxSessionKept = 100_000         // bound on live sessions remembered
)

// fleetView follows what the cells already publish on the supercluster:
// every DGS's heartbeat (state and version) and the session events (a
// match started, a match ended). From them it counts Ready and Allocated
// servers per version, players in running matches, and matches started per
// minute, per cell.
type fleetView struct {
	mu sync.Mutex
	// mu guards the fields below.
	dgs      map[string]dgsSeen     // by DGS id
	sessions map[string]sessionSeen // running, by session id
	starts   map[string][]time.Time // per cell, the last minute's match starts
}

type dgsSeen struct {
	cell, version string
	state         events.DGSState
	at            time.Time
}

type sessionSeen struct {
	cell    string
	players int
	at      time.Time
}

func newFleetView() *fleetView {
	return &fleetView{dgs: map[string]dgsSeen{}, sessions: map[string]sessionSeen{}, starts: map[string][]time.Time{}}
}

// run subscribes and returns when ctx ends. Messages are applied in the
// subscription's own goroutine; malformed ones are ignored.
func (f *fleetView) run(ctx context.Context, nc *nats.Conn) error {
	health, err := nc.Subscribe(events.DGSHealthFilter("*"), func(m *nats.Msg) {
		var h events.DGSHealth
		if json.Unmarshal(m.Data, &h) == nil && h.ID != "" && h.Cell != "" {
			f.dgsHeard(h, time.Now())
		}
	})
	if err != nil {
		return fmt.Errorf("fleet view: %w", err)
	}
	defer health.Unsubscribe()
	sess, err := nc.Subscribe("match.*.session.*", func(m *nats.Msg) {
		var e events.SessionEvent
		if json.Unmarshal(m.Data, &e) == nil && e.SessionID != "" && e.Cell != "" {
			f.sessionEvent(e, time.Now())
		}
	})
	if err != nil {
		return fmt.Errorf("fleet view: %w", err)
	}
	defer sess.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("fleet view: %w", err)
	}
	<-ctx.Done()
	return nil
}

func (f *fleetView) dgsHeard(h events.DGSHealth, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.State == events.DGSShutdown {
		delete(f.dgs, h.ID)
		return
	}
	f.dgs[h.ID] = dgsSeen{cell: h.Cell, version: h.Version, state: h.State, at: now}
}

func (f *fleetView) sessionEvent(e events.SessionEvent, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch e.Kind {
	case "started":
		if _, dup := f.sessions[e.SessionID]; dup || len(f.sessions) >= maxSessionKept {
			return
		}
		f.sessions[e.SessionID] = sessionSeen{cell: e.Cell, players: len(e.Players), at: now}
		f.starts[e.Cell] = append(f.starts[e.Cell], now)
	case "ended":
		delete(f.sessions, e.SessionID)
	}
}

// CellLoad is what the fleet view knows about one cell.
type CellLoad struct {
	// DGS counts servers by version, then state (Ready, Allocated, ...).
	DGS map[string]map[string]int `json:"dgs"`
	// Players is the number of players in running matches (CCU in play).
	Players int `json:"players"`
	// Matches is the number of running matches.
	Matches int `json:"matches"`
	// MatchesPerMinute counts matches started in the last minute.
	MatchesPerMinute int `json:"matches_per_minute"`
}

// load returns every cell's load at now, forgetting what is too old.
func (f *fleetView) load(now time.Time) map[string]*CellLoad {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*CellLoad{}
	get := func(cell string) *CellLoad {
		l, ok := out[cell]
		if !ok {
			l = &CellLoad{DGS: map[string]map[string]int{}}
			out[cell] = l
		}
		return l
	}
	for id, d := range f.dgs {
		if now.Sub(d.at) > dgsSilence {
			delete(f.dgs, id)
			continue
		}
		l := get(d.cell)
		if l.DGS[d.version] == nil {
			l.DGS[d.version] = map[string]int{}
		}
		l.DGS[d.version][string(d.state)]++
	}
	for id, s := range f.sessions {
		if now.Sub(s.at) > sessionMaxAge {
			delete(f.sessions, id)
			continue
		}
		l := get(s.cell)
		l.Players += s.players
		l.Matches++
	}
	for cell, ts := range f.starts {
		i := 0
		for i < len(ts) && now.Sub(ts[i]) > matchRateSpan {
			i++
		}
		ts = ts[i:]
		if len(ts) == 0 {
			delete(f.starts, cell)
			continue
		}
		f.starts[cell] = ts
		get(cell).MatchesPerMinute = len(ts)
	}
	return out
}
