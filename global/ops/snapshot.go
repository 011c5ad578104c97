package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/proto/events"
)

// slowPartsTTL: flags and the leaderboard come from the database and
// Redis; every console viewer shares one read per TTL.
const slowPartsTTL = 2 * time.Second

// CellView is one cell on the console.
type CellView struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	State  string `json:"state"`
	// Load is what the cell's DGS heartbeats and session events show
	// (support and admin only).
	Load *CellLoad `json:"load,omitempty"`
}

// RegionView groups the cells of one region.
type RegionView struct {
	Region string `json:"region"`
	// State is active or failed_over (To: where its players go).
	State string     `json:"state"`
	To    string     `json:"to,omitempty"`
	Cells []CellView `json:"cells"`
}

// Totals sum the cells' load.
type Totals struct {
	Players          int `json:"players"`
	Matches          int `json:"matches"`
	MatchesPerMinute int `json:"matches_per_minute"`
	Ready            int `json:"ready"`
	Allocated        int `json:"allocated"`
}

// Snapshot is what the console shows; the event stream sends one each
// time it changes. A player sees the public part (regions, cells and their
// states, the leaderboard top), support and admin the load and the flags.
type Snapshot struct {
	Role    Role         `json:"role"`
	Regions []RegionView `json:"regions"`
	Totals  *Totals      `json:"totals,omitempty"`
	// Flags are the newest anti-cheat flags nobody has reviewed yet.
	Flags       []ReviewedFlag    `json:"flags,omitempty"`
	Leaderboard *leaderboard.Page `json:"leaderboard,omitempty"`
}

type slowParts struct {
	flags []ReviewedFlag
	board *leaderboard.Page
}

// snapshot builds the view for role.
func (o *Ops) snapshot(ctx context.Context, role Role) Snapshot {
	s := Snapshot{Role: role, Regions: []RegionView{}}
	detail := role.AtLeast(RoleSupport)
	load := o.fleet.load(time.Now())
	var tot Totals
	byRegion := map[string]int{}
	for _, c := range o.deps.Topology.Cells() {
		cv := CellView{ID: c.ID, Region: c.Region, State: c.State}
		if detail {
			cv.Load = load[c.ID]
			if cv.Load == nil {
				cv.Load = &CellLoad{DGS: map[string]map[string]int{}}
			}
			tot.Players += cv.Load.Players
			tot.Matches += cv.Load.Matches
			tot.MatchesPerMinute += cv.Load.MatchesPerMinute
			for _, st := range cv.Load.DGS {
				tot.Ready += st["ready"]
				tot.Allocated += st["allocated"]
			}
		}
		i, ok := byRegion[c.Region]
		if !ok {
			i = len(s.Regions)
			byRegion[c.Region] = i
			rv := RegionView{Region: c.Region, State: events.RegionActive}
			if rs, ok := o.regionState(c.Region); ok {
				rv.State, rv.To = rs.State, rs.To
			}
			s.Regions = append(s.Regions, rv)
		}
		s.Regions[i].Cells = append(s.Regions[i].Cells, cv)
	}
	slow := o.slowParts(ctx)
	s.Leaderboard = slow.board
	if detail {
		s.Totals = &tot
		s.Flags = slow.flags
		if s.Flags == nil {
			s.Flags = []ReviewedFlag{}
		}
	}
	return s
}

// slowParts returns the flags and the leaderboard top, read at most once
// per slowPartsTTL. A failed read leaves that part out (and is logged).
func (o *Ops) slowParts(ctx context.Context) slowParts {
	o.mu.Lock()
	defer o.mu.Unlock()
	if time.Since(o.slowTime) < slowPartsTTL {
		return o.slow
	}
	var p slowParts
	flags, err := o.listFlags(ctx, "open", 10)
	if err != nil {
		o.log.Warn("console: recent flags", "err", err)
	}
	p.flags = flags
	if o.deps.Leaderboards != nil && o.cfg.Leaderboard != "" {
		page, err := o.deps.Leaderboards.Read(ctx, leaderboard.Query{Board: o.cfg.Leaderboard, Limit: 10})
		if err != nil {
			o.log.Warn("console: leaderboard", "board", o.cfg.Leaderboard, "err", err)
		} else {
			p.board = &page
		}
	}
	o.slow, o.slowTime = p, time.Now()
	return p
}

// Me is the answer of GET /ops/me.
type Me struct {
	PlayerID string `json:"player_id"`
	Role     Role   `json:"role"`
}

func (o *Ops) handleMe(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	httpapi.WriteJSON(w, http.StatusOK, Me{PlayerID: c.ID.String(), Role: c.Role})
	return nil
}

func (o *Ops) handleSnapshot(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, o.snapshot(r.Context(), callerOf(r).Role))
	return nil
}

// keepAlive: a comment line goes out when nothing changed for this long,
// so proxies keep the stream open and a dead client is noticed.
const keepAlive = 15 * time.Second

// writeBudget is how long one write to an event stream may block.
const writeBudget = keepAlive + 15*time.Second

// handleEvents streams snapshots as server-sent events: one "snapshot"
// event at once, then one each time the view changes. ?count=N closes the
// stream after N events (scripts and tests). The role is looked up again
// on every event, so a demoted caller stops seeing detail at once.
func (o *Ops) handleEvents(w http.ResponseWriter, r *http.Request) error {
	count := 0
	if s := r.URL.Query().Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1_000_000 {
			return httpapi.BadRequest("invalid_count", "count must be 1..1000000")
		}
		count = n
	}
	rc := http.NewResponseController(w)
	// The server's read and write timeouts bound whole requests; a stream
	// lives longer. No read deadline (the request has been read; a client
	// that leaves is seen by the failing write), and a write deadline that
	// moves with every tick, so a client that stops reading is still cut
	// off after writeBudget.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(writeBudget))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	caller := callerOf(r)
	tick := time.NewTicker(o.cfg.StreamInterval)
	defer tick.Stop()
	var last []byte
	lastSent := time.Now()
	sent := 0
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(writeBudget))
		role, err := o.roleOf(ctx, caller.ID)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			role = RolePlayer // the public view until the lookup works again
		}
		b, err := json.Marshal(o.snapshot(ctx, role))
		if err != nil {
			return fmt.Errorf("console stream: %w", err)
		}
		switch {
		case !bytes.Equal(b, last):
			if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
				return nil // the client went away
			}
			last, lastSent = b, time.Now()
			sent++
		case time.Since(lastSent) >= keepAlive:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			lastSent = time.Now()
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		if count > 0 && sent >= count {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-o.stopped:
			return nil
		case <-tick.C:
		}
	}
}
