package arena

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// match is one allocation's game. Its goroutine (run) owns sim and every
// player; other goroutines talk to it through joins, leaves and the
// players' input queues.
type match struct {
	srv      *Server
	cfg      *Config
	session  uuid.UUID
	mode     string
	verifier *connecttoken.Verifier
	slotOf   map[uuid.UUID]int // read-only after creation
	sim      *sim

	joins     chan *conn
	leaves    chan *conn
	aborted   chan struct{}
	abortOnce sync.Once
	done      chan struct{} // closed once the match has ended

	allocatedAt time.Time
	startedAt   time.Time
	startTick   uint32
	lastPresent uint32 // last tick with a connected player
}

func (m *match) abort() { m.abortOnce.Do(func() { close(m.aborted) }) }

func (m *match) run() {
	defer m.srv.wg.Done()
	m.allocatedAt = time.Now()
	t := time.NewTicker(time.Second / time.Duration(m.cfg.TickRate))
	defer t.Stop()
	for {
		select {
		case c := <-m.joins:
			m.attach(c)
		case c := <-m.leaves:
			if p := m.sim.players[c.slot]; p.conn == c {
				p.conn = nil
			}
		case <-m.aborted:
			m.end(wire.EndAbandoned)
			return
		case <-t.C:
			if reason := m.step(); reason != 0 {
				m.end(reason)
				return
			}
		}
	}
}

// attach makes c the player's stream (replacing an older one) and sends
// ACCEPT, which is therefore its first server frame.
func (m *match) attach(c *conn) {
	p := m.sim.players[c.slot]
	if p.conn != nil {
		p.conn.end()
	}
	p.conn, p.joined = c, true
	p.lastSeq = 0 // a new stream starts a new sequence
	ids := make([]uuid.UUID, len(m.sim.players))
	for i, q := range m.sim.players {
		ids[i] = q.id
	}
	c.send(wire.AppendFrame(nil, wire.Accept{
		Slot: p.slot, TickRate: uint16(m.cfg.TickRate),
		ArenaW: m.cfg.ArenaW, ArenaH: m.cfg.ArenaH,
		MaxStep: m.cfg.MaxStep, FireCooldown: m.cfg.FireCooldown,
		Players: ids,
	}))
}

// step runs one tick and says whether (and why) the match ends.
func (m *match) step() wire.EndReason {
	s := m.sim
	s.beginTick()
	present, joined := 0, 0
	for _, p := range s.players {
		if p.joined {
			joined++
		}
		if p.conn == nil {
			continue
		}
		present++
		select {
		case in := <-p.conn.inputs:
			s.apply(p, in)
		default:
		}
	}
	if !s.started {
		waited := s.tick >= m.cfg.ticks(m.cfg.WaitForPlayers)
		switch {
		case joined == len(s.players) || (waited && joined > 0):
			s.started, m.startTick, m.startedAt = true, s.tick, time.Now()
		case waited:
			return wire.EndAbandoned
		}
	}
	m.broadcastSnapshot()
	if present > 0 {
		m.lastPresent = s.tick
	}
	if !s.started {
		return 0
	}
	if l := s.leader(); l != nil && int(l.score) >= m.cfg.ScoreLimit {
		return wire.EndScoreLimit
	}
	if s.tick-m.startTick >= m.cfg.ticks(m.cfg.TimeLimit) {
		return wire.EndTimeLimit
	}
	if s.tick-max(m.lastPresent, m.startTick) >= m.cfg.ticks(m.cfg.AbandonAfter) {
		return wire.EndAbandoned
	}
	return 0
}

// broadcastSnapshot encodes the snapshot once and sends each connected
// player a copy carrying its own ack seq.
func (m *match) broadcastSnapshot() {
	s := m.sim
	s.scratch = s.appendSnapshot(s.scratch[:0])
	for _, p := range s.players {
		if p.conn == nil {
			continue
		}
		f := make([]byte, len(s.scratch))
		copy(f, s.scratch)
		f[wire.SnapshotAckSeqOffset] = byte(p.lastSeq >> 24)
		f[wire.SnapshotAckSeqOffset+1] = byte(p.lastSeq >> 16)
		f[wire.SnapshotAckSeqOffset+2] = byte(p.lastSeq >> 8)
		f[wire.SnapshotAckSeqOffset+3] = byte(p.lastSeq)
		p.conn.send(f)
	}
}

// end sends END to every connected player, frees the server for the next
// allocation and hands the result over.
func (m *match) end(reason wire.EndReason) {
	s := m.sim
	leader := s.leader()
	e := wire.End{Reason: reason, WinnerSlot: wire.NoWinner}
	if leader != nil {
		e.WinnerSlot = leader.slot
	}
	for _, p := range s.players {
		e.Scores = append(e.Scores, wire.SlotScore{Slot: p.slot, Score: p.score})
	}
	frame := wire.AppendFrame(nil, e)
	for _, p := range s.players {
		if p.conn != nil {
			p.conn.send(frame)
			p.conn.end()
			p.conn = nil
		}
	}
	res := m.result(reason, leader)
	m.srv.matchEnded(m)
	close(m.done)
	if m.cfg.OnMatchEnd != nil {
		m.cfg.OnMatchEnd(res)
	}
}

func (m *match) result(reason wire.EndReason, leader *player) events.MatchResult {
	started := m.startedAt
	if started.IsZero() {
		started = m.allocatedAt
	}
	r := events.MatchResult{
		SessionID:  m.session.String(),
		Cell:       m.cfg.Cell,
		GameMode:   m.mode,
		DGSID:      m.cfg.ID,
		StartedAt:  started.UTC(),
		EndedAt:    time.Now().UTC(),
		WinnerTeam: -1,
		Reason:     reason.String(),
	}
	teamScore := map[int]int64{}
	for _, p := range m.sim.players {
		r.Players = append(r.Players, events.PlayerResult{
			PlayerID:       p.id.String(),
			Team:           p.team,
			Score:          int64(p.score),
			FlaggedInputs:  p.flagged,
			InputsAccepted: p.accepted,
			Connected:      p.joined,
		})
		teamScore[p.team] += int64(p.score)
	}
	if leader != nil {
		r.Winner = leader.id.String()
	}
	best, bestTeam, tie := int64(-1), -1, false
	for team, sc := range teamScore {
		switch {
		case sc > best:
			best, bestTeam, tie = sc, team, false
		case sc == best:
			tie = true
		}
	}
	if !tie && reason != wire.EndAbandoned {
		r.WinnerTeam = bestTeam
	}
	if reason == wire.EndAbandoned {
		r.Winner = ""
	}
	return r
}
