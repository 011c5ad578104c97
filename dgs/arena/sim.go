package arena

import (
	"math"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/wire"
)

// player is one slot of the match. The match goroutine owns it.
type player struct {
	id   uuid.UUID
	slot uint8
	team int

	x, y     int32 // Q8
	health   uint16
	score    int32
	cooldown uint16 // ticks until the next shot is allowed
	respawn  uint16 // ticks of spawn protection left: shots ignored, not flagged
	lastSeq  uint32 // last processed input seq (0: none yet)

	accepted int64 // inputs processed
	flagged  int64 // inputs dropped or corrected as impossible

	conn   *conn // nil while not connected
	joined bool  // has ever joined
}

// sim is the pure game state: no sockets, no clocks, so it is easy to test
// and benchmark.
type sim struct {
	cfg     *Config
	n       int // players in the match (fixed at allocation)
	players []*player
	tick    uint32
	started bool // the match clock runs; shots count
	scratch []byte
}

func newSim(cfg *Config, ids []uuid.UUID, teams []int) *sim {
	s := &sim{cfg: cfg, n: len(ids)}
	for i, id := range ids {
		p := &player{id: id, slot: uint8(i), team: teams[i]}
		s.spawn(p)
		s.players = append(s.players, p)
	}
	return s
}

// spawn puts p at its slot's spawn point with full health: slots alternate
// between the left and right quarter lines, spread vertically.
func (s *sim) spawn(p *player) {
	n := int64(max(s.n, int(p.slot)+1))
	rows := (n + 1) / 2
	row := int64(p.slot / 2)
	p.x = s.cfg.ArenaW / 4
	if p.slot%2 == 1 {
		p.x = s.cfg.ArenaW - s.cfg.ArenaW/4
	}
	p.y = int32(int64(s.cfg.ArenaH) * (row + 1) / (rows + 1))
	p.health = s.cfg.MaxHealth
	// A player killed this tick must not shoot back in the same tick (that
	// made two mirrored players trade kills forever): its shots are ignored
	// for one cooldown, without flagging, since the client could not know.
	p.respawn = s.cfg.FireCooldown
}

// beginTick advances the clock and the cooldowns.
func (s *sim) beginTick() {
	s.tick++
	for _, p := range s.players {
		if p.cooldown > 0 {
			p.cooldown--
		}
		if p.respawn > 0 {
			p.respawn--
		}
	}
}

// apply validates and applies one input of p. Impossible inputs are dropped
// (replayed seq) or corrected (too fast, out of bounds, fire too soon), and
// counted in p.flagged.
func (s *sim) apply(p *player, in wire.Input) {
	if in.Seq <= p.lastSeq {
		p.flagged++ // replayed or reordered: never trust it twice
		return
	}
	p.lastSeq = in.Seq
	p.accepted++
	flagged := false

	dx, dy := int64(in.DX), int64(in.DY)
	maxStep := int64(s.cfg.MaxStep)
	if d2 := dx*dx + dy*dy; d2 > maxStep*maxStep {
		f := float64(maxStep) / math.Sqrt(float64(d2))
		dx, dy = int64(float64(dx)*f), int64(float64(dy)*f) // truncation keeps it ≤ maxStep
		flagged = true
	}
	nx, ny := int64(p.x)+dx, int64(p.y)+dy
	if cx, cy := clamp(nx, 0, int64(s.cfg.ArenaW)), clamp(ny, 0, int64(s.cfg.ArenaH)); cx != nx || cy != ny {
		nx, ny = cx, cy
		flagged = true
	}
	p.x, p.y = int32(nx), int32(ny)

	if in.Fire {
		switch {
		case p.respawn > 0:
			// spawn protection: ignored, not the client's fault
		case p.cooldown > 0:
			flagged = true // faster than the weapon allows
		case s.started:
			p.cooldown = s.cfg.FireCooldown
			s.fire(p, in.Aim)
		}
	}
	if flagged {
		p.flagged++
	}
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// fire is a hitscan shot from p along aim: the nearest other player whose
// centre is within HitRadius of the ray and within Range takes Damage; a kill
// scores for p and respawns the victim.
func (s *sim) fire(p *player, aim uint16) {
	a := float64(aim) / 65536 * 2 * math.Pi
	dx, dy := math.Cos(a), math.Sin(a)
	r2 := float64(s.cfg.HitRadius) * float64(s.cfg.HitRadius)
	var hit *player
	best := math.Inf(1)
	for _, q := range s.players {
		if q == p || q.conn == nil {
			continue
		}
		vx, vy := float64(q.x-p.x), float64(q.y-p.y)
		t := vx*dx + vy*dy
		if t < 0 || t > float64(s.cfg.Range) || t >= best {
			continue
		}
		if vx*vx+vy*vy-t*t <= r2 {
			hit, best = q, t
		}
	}
	if hit == nil {
		return
	}
	if hit.health > s.cfg.Damage {
		hit.health -= s.cfg.Damage
		return
	}
	p.score++
	s.spawn(hit)
}

// leader returns the player with the highest score, or nil on a tie.
func (s *sim) leader() *player {
	var best *player
	tie := false
	for _, p := range s.players {
		switch {
		case best == nil || p.score > best.score:
			best, tie = p, false
		case p.score == best.score:
			tie = true
		}
	}
	if tie {
		return nil
	}
	return best
}

// appendSnapshot appends the SNAPSHOT frame of the current state with AckSeq
// 0; patch it per player at wire.SnapshotAckSeqOffset.
func (s *sim) appendSnapshot(dst []byte) []byte {
	snap := wire.Snapshot{Tick: s.tick, Players: make([]wire.PlayerState, 0, len(s.players))}
	for _, p := range s.players {
		var flags uint8
		if p.conn != nil {
			flags |= wire.FlagConnected
		}
		if p.health > 0 {
			flags |= wire.FlagAlive
		}
		snap.Players = append(snap.Players, wire.PlayerState{
			Slot: p.slot, X: p.x, Y: p.y, Health: p.health, Score: p.score, Flags: flags,
		})
	}
	return wire.AppendFrame(dst, snap)
}
