package arena

import (
	"errors"
	"log/slog"
	"time"

	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// Config configures a Server. Every zero value means the default written
// next to the field (setDefaults is the one place they are set).
type Config struct {
	Cell     string // copied into results
	ID       string // DGS id, copied into results
	GameMode string // default "arena" when the allocation has none

	TickRate       int           // ticks per second; 30
	ScoreLimit     int           // kills to win; 10
	TimeLimit      time.Duration // match length once started; 3 min
	WaitForPlayers time.Duration // from allocation until the clock starts anyway; 30 s
	AbandonAfter   time.Duration // nobody connected this long ends the match; 10 s

	ArenaW, ArenaH int32  // arena size, Q8; 100 units each
	MaxStep        uint16 // longest move per tick, Q8; 64 (0.25 unit)
	FireCooldown   uint16 // ticks between shots; 10
	MaxHealth      uint16 // 100
	Damage         uint16 // per hit; 34
	HitRadius      int32  // Q8; 1 unit
	Range          int32  // Q8; 60 units

	InputQueue   int           // per-player input queue; 8
	OutQueue     int           // per-player outgoing frame queue; 8
	JoinTimeout  time.Duration // wait for JOIN on a new stream; 5 s
	Linger       time.Duration // keep a stream open after END/REFUSE while the peer still talks (so KCP delivers it), at most this long; 5 s
	WriteTimeout time.Duration // a blocked stream write gives up; 2 s
	TokenLeeway  time.Duration // clock skew allowed on token expiry; 2 s

	// HelloPerSource is relay HELLOs verified per second per source ip:port
	// (burst 2×), checked before any signature work on kcp-go's read
	// goroutine; HelloSources bounds the sources tracked. 10/s, 4096.
	HelloPerSource float64
	HelloSources   int

	// OnMatchEnd receives each match's result once, from the match
	// goroutine, after END was queued to the players. It must not block
	// for long. Nil drops results.
	OnMatchEnd func(events.MatchResult)
	Log        *slog.Logger // slog.Default()
}

func (c *Config) setDefaults() error {
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	if c.GameMode == "" {
		c.GameMode = "arena"
	}
	if c.TickRate <= 0 {
		c.TickRate = 30
	}
	if c.ScoreLimit <= 0 {
		c.ScoreLimit = 10
	}
	def(&c.TimeLimit, 3*time.Minute)
	def(&c.WaitForPlayers, 30*time.Second)
	def(&c.AbandonAfter, 10*time.Second)
	if c.ArenaW <= 0 {
		c.ArenaW = 100 * wire.Q8
	}
	if c.ArenaH <= 0 {
		c.ArenaH = 100 * wire.Q8
	}
	if c.MaxStep == 0 {
		c.MaxStep = 64
	}
	if c.FireCooldown == 0 {
		c.FireCooldown = 10
	}
	if c.MaxHealth == 0 {
		c.MaxHealth = 100
	}
	if c.Damage == 0 {
		c.Damage = 34
	}
	if c.HitRadius <= 0 {
		c.HitRadius = wire.Q8
	}
	if c.Range <= 0 {
		c.Range = 60 * wire.Q8
	}
	if c.InputQueue <= 0 {
		c.InputQueue = 8
	}
	if c.OutQueue <= 0 {
		c.OutQueue = 8
	}
	def(&c.JoinTimeout, 5*time.Second)
	def(&c.Linger, 5*time.Second)
	def(&c.WriteTimeout, 2*time.Second)
	def(&c.TokenLeeway, 2*time.Second)
	if c.HelloPerSource <= 0 {
		c.HelloPerSource = 10
	}
	if c.HelloSources <= 0 {
		c.HelloSources = 4096
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.TickRate > 1000 {
		return errors.New("arena: TickRate above 1000")
	}
	return nil
}

// ticks converts d to a number of ticks (at least 1).
func (c *Config) ticks(d time.Duration) uint32 {
	n := uint32(d * time.Duration(c.TickRate) / time.Second)
	return max(n, 1)
}
