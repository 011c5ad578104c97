package cell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/cell/session"
	"github.com/cellgrid/cellgrid/proto/events"
)

// Cross-cell overflow. A cell that formed a match but cannot give it a
// server (its fleet at the cap, failing, or draining with none ready) asks
// the next cell that is within every player's latency limit to host it,
// the multi-cluster allocation Agones users ask for. Each ticket's
// latencies to the other cells, as the client measured them at join, are
// kept beside the ticket in Redis for this.

func (c *Cell) latencyKey(ticketID string) string { return c.tickets.Key("lat", ticketID) }

// rememberLatencies stores what the client reported for the other cells.
func (c *Cell) rememberLatencies(ctx context.Context, ticketID string, mode matchmaker.GameMode, lat map[string]int) {
	others := map[string]int{}
	for id, ms := range lat {
		if id != c.cfg.ID && ms >= 0 && id != "" {
			others[id] = max(ms, 1)
		}
	}
	if len(others) == 0 || c.cfg.OverflowAfter < 0 {
		return
	}
	b, _ := json.Marshal(others)
	ttl := mode.TicketTTL + time.Minute
	rd := c.deps.Redis
	if err := rd.Do(ctx, rd.B().Set().Key(c.latencyKey(ticketID)).Value(string(b)).PxMilliseconds(ttl.Milliseconds()).Build()).Error(); err != nil {
		c.log.Warn("ticket latencies not kept: no overflow for it", "ticket", ticketID, "err", err)
	}
}

// overflowDue reports whether a failed local allocation should go to
// another cell: no ready server here, and the oldest ticket has waited
// OverflowAfter.
func (c *Cell) overflowDue(err error, m matchmaker.Match) bool {
	if c.cfg.OverflowAfter < 0 || !errors.Is(err, fleet.ErrNoReadyServer) {
		return false
	}
	for _, t := range m.Tickets {
		if time.Since(t.Entry.CreatedAt) >= c.cfg.OverflowAfter {
			return true
		}
	}
	return false
}

type overflowCandidate struct {
	cell  string
	worst int
	lat   map[string]int // by player
}

// overflowCandidates lists the cells within every player's latency limit,
// the nearest (by the worst player's latency) first.
func (c *Cell) overflowCandidates(ctx context.Context, m matchmaker.Match) ([]overflowCandidate, error) {
	keys := make([]string, len(m.Tickets))
	for i, t := range m.Tickets {
		keys[i] = c.latencyKey(t.Entry.TicketID)
	}
	rd := c.deps.Redis
	vals, err := rd.Do(ctx, rd.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("overflow candidates: %w", err)
	}
	limit := int(m.Mode.MaxLatency / time.Millisecond)
	by := map[string]*overflowCandidate{}
	for i, v := range vals {
		s, err := v.ToString()
		if err != nil {
			return nil, nil // a ticket without latencies: nowhere is known to be in its limit
		}
		var lat map[string]int
		if err := json.Unmarshal([]byte(s), &lat); err != nil {
			return nil, nil
		}
		for cell, ms := range lat {
			if limit > 0 && ms > limit {
				continue
			}
			oc := by[cell]
			if oc == nil {
				oc = &overflowCandidate{cell: cell, lat: map[string]int{}}
				by[cell] = oc
			}
			oc.worst = max(oc.worst, ms)
			for _, p := range m.Tickets[i].Players {
				oc.lat[p] = ms
			}
		}
	}
	var out []overflowCandidate
	for _, oc := range by {
		if len(oc.lat) == len(m.Players()) {
			out = append(out, *oc)
		}
	}
	slices.SortFunc(out, func(a, b overflowCandidate) int {
		if a.worst != b.worst {
			return a.worst - b.worst
		}
		if a.cell < b.cell {
			return -1
		}
		return 1
	})
	return out, nil
}

// overflow places m in the nearest cell that accepts it and marks the
// tickets ready with that cell's relay and tokens; cause is returned when
// no cell does.
func (c *Cell) overflow(ctx context.Context, m matchmaker.Match, cause error) error {
	cands, err := c.overflowCandidates(ctx, m)
	if err != nil {
		return errors.Join(cause, err)
	}
	for _, oc := range cands {
		req, _ := json.Marshal(events.OverflowRequest{SessionID: m.SessionID, GameMode: m.Mode.Name, Teams: m.Teams, LatencyMS: oc.lat, From: c.cfg.ID})
		msg, err := c.deps.NATS.RequestWithContext(ctx, events.CellOverflowSubject(oc.cell), req)
		if err != nil {
			c.log.Info("overflow cell did not answer", "cell", oc.cell, "session", m.SessionID, "err", err)
			continue
		}
		var rep events.OverflowReply
		if err := json.Unmarshal(msg.Data, &rep); err != nil || rep.Error != "" {
			c.log.Info("overflow refused", "cell", oc.cell, "session", m.SessionID, "why", rep.Error, "err", err)
			continue
		}
		doc, _ := json.Marshal(readyDoc{ID: m.SessionID, GameMode: m.Mode.Name, Region: rep.Region, Relay: rep.RelayAddr, GameAddr: rep.GameAddr, Cell: rep.Cell})
		c.log.Info("match overflowed to another cell", "session", m.SessionID, "cell", rep.Cell, "worst_latency_ms", oc.worst)
		return c.tickets.MarkReady(ctx, m, string(doc), rep.Tokens)
	}
	return cause
}

// runOverflow hosts matches other cells could not place, one at a time.
func (c *Cell) runOverflow(ctx context.Context) error {
	sub, err := c.deps.NATS.Subscribe(events.CellOverflowSubject(c.cfg.ID), func(m *nats.Msg) {
		var req events.OverflowRequest
		var rep events.OverflowReply
		if err := json.Unmarshal(m.Data, &req); err != nil {
			rep.Error = "malformed request"
		} else {
			rep = c.hostOverflow(ctx, req)
		}
		b, _ := json.Marshal(rep)
		_ = m.Respond(b)
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	<-ctx.Done()
	return nil
}

func (c *Cell) hostOverflow(ctx context.Context, req events.OverflowRequest) events.OverflowReply {
	refuse := func(format string, args ...any) events.OverflowReply {
		return events.OverflowReply{Error: fmt.Sprintf(format, args...)}
	}
	if c.Draining() {
		return refuse("cell %s is draining", c.cfg.ID)
	}
	if _, ok := c.FailedOver(); ok {
		return refuse("region %s is failed over", c.cfg.Region)
	}
	mode, ok := c.tickets.Mode(req.GameMode)
	if !ok {
		return refuse("unknown game mode %q", req.GameMode)
	}
	if _, err := uuid.Parse(req.SessionID); err != nil {
		return refuse("session id is not a UUID")
	}
	sess := session.Session{ID: req.SessionID, Mode: mode.Name, Region: c.cfg.Region, Teams: req.Teams}
	players := sess.Players()
	if len(req.Teams) != mode.Teams || len(players) == 0 {
		return refuse("match does not fit mode %s", mode.Name)
	}
	limit := int(mode.MaxLatency / time.Millisecond)
	for _, p := range players {
		if _, err := uuid.Parse(p); err != nil {
			return refuse("player id is not a UUID")
		}
		ms, ok := req.LatencyMS[p]
		if !ok || (limit > 0 && ms > limit) {
			return refuse("player %s is not within %d ms of %s", p, limit, c.cfg.ID)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	alloc, err := c.fleet.Allocate(ctx, events.Allocation{
		SessionID: sess.ID, GameMode: sess.Mode, Players: players, Teams: sess.Teams, ConnectKeys: []string{c.pubB64},
	})
	if err != nil {
		return refuse("no server: %v", err)
	}
	if err := c.sessions.Found(ctx, sess); err != nil {
		c.log.Warn("match.found not published", "session", sess.ID, "err", err)
	}
	sess.DGSID, sess.GameAddr, sess.StartedAt = alloc.ServerID, alloc.GameAddr, time.Now()
	if err := c.sessions.Start(ctx, sess); err != nil {
		c.fleet.Release(alloc.ServerID)
		return refuse("record session: %v", err)
	}
	tokens := make(map[string]string, len(players))
	for _, p := range players {
		tok, err := c.mint(sess.ID, p, alloc.GameAddr)
		if err != nil {
			c.fleet.Release(alloc.ServerID)
			return refuse("mint token: %v", err)
		}
		tokens[p] = tok
	}
	c.log.Info("hosting a match from another cell", "session", sess.ID, "from", req.From)
	return events.OverflowReply{Cell: c.cfg.ID, Region: c.cfg.Region, RelayAddr: c.relayPub, GameAddr: alloc.GameAddr.String(), Tokens: tokens}
}
