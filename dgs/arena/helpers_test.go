package arena

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/dgs/wire"
	"github.com/cellgrid/cellgrid/internal/connecttoken"
	"github.com/cellgrid/cellgrid/internal/events"
)

// fixture is a running arena server with a cell key and one allocation.
type fixture struct {
	t       *testing.T
	srv     *Server
	priv    ed25519.PrivateKey
	alloc   events.Allocation
	players []uuid.UUID
	results chan events.MatchResult
	addr    *net.UDPAddr
}

func newFixture(t *testing.T, cfg Config, nPlayers int) *fixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, priv: priv, results: make(chan events.MatchResult, 4)}
	cfg.OnMatchEnd = func(r events.MatchResult) { f.results <- r }
	cfg.Linger = 200 * time.Millisecond
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, pc)
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.addr = srv, pc.LocalAddr().(*net.UDPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("arena Run did not return")
		}
	})
	for range nPlayers {
		f.players = append(f.players, uuid.New())
	}
	f.alloc = events.Allocation{
		SessionID:   uuid.NewString(),
		GameMode:    "arena",
		ConnectKeys: []string{base64.StdEncoding.EncodeToString(pub)},
	}
	for _, p := range f.players {
		f.alloc.Players = append(f.alloc.Players, p.String())
	}
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	if err := f.srv.StartMatch(f.alloc); err != nil {
		f.t.Fatal(err)
	}
}

// token mints a connect token; mutate adjusts it before signing.
func (f *fixture) token(player uuid.UUID, mutate func(*connecttoken.Token)) []byte {
	f.t.Helper()
	tok := connecttoken.Token{
		SessionID:  uuid.MustParse(f.alloc.SessionID),
		PlayerID:   player,
		ExpiresAt:  time.Now().Add(time.Minute),
		ServerAddr: netip.MustParseAddrPort(f.addr.String()),
	}
	if mutate != nil {
		mutate(&tok)
	}
	b, err := connecttoken.Mint(f.priv, tok)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) dial(ctx context.Context, token []byte) (*wire.Client, error) {
	c, err := wire.Dial(ctx, wire.ClientConfig{Addr: f.addr, Token: token})
	if err == nil {
		f.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (f *fixture) waitResult() events.MatchResult {
	f.t.Helper()
	select {
	case r := <-f.results:
		return r
	case <-time.After(30 * time.Second):
		f.t.Fatal("no match result")
	}
	return events.MatchResult{}
}

// bot plays honestly: one input per snapshot, moves towards the nearest
// opponent (never closer than 4 units) within MaxStep, aims at it, and fires
// no faster than the cooldown. It returns every snapshot it saw.
func bot(c *wire.Client) []wire.Snapshot {
	acc := c.Accept()
	var seen []wire.Snapshot
	var seq uint32
	for snap := range c.Snapshots() {
		seen = append(seen, snap)
		var me, target *wire.PlayerState
		for i := range snap.Players {
			p := &snap.Players[i]
			if p.Slot == acc.Slot {
				me = p
			} else if p.Flags&wire.FlagConnected != 0 && (target == nil || dist(me, p) < dist(me, target)) {
				target = p
			}
		}
		seq++
		in := wire.Input{Seq: seq}
		if me != nil && target != nil {
			dx, dy := float64(target.X-me.X), float64(target.Y-me.Y)
			d := math.Hypot(dx, dy)
			if d > 4*wire.Q8 {
				step := float64(acc.MaxStep) / d
				in.DX, in.DY = int16(dx*step), int16(dy*step)
			}
			a := math.Atan2(dy, dx)
			if a < 0 {
				a += 2 * math.Pi
			}
			in.Aim = uint16(a / (2 * math.Pi) * 65536)
			in.Fire = seq%uint32(acc.FireCooldown) == 0
		}
		if c.SendInput(in) != nil {
			break
		}
	}
	for range c.Snapshots() {
	}
	return seen
}

func dist(a, b *wire.PlayerState) float64 {
	if a == nil || b == nil {
		return math.Inf(1)
	}
	return math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y))
}

func isRefused(err error, want wire.RefuseReason) bool {
	var re *wire.RefusedError
	return errors.As(err, &re) && re.Reason == want
}
