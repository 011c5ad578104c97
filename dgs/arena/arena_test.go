package arena

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xtaci/kcp-go/v5"

	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/packet"
	"github.com/cellgrid/cellgrid/proto/wire"
)

func TestMatchToScoreLimit(t *testing.T) {
	testenv.CheckGoroutines(t)
	f := newFixture(t, Config{ScoreLimit: 3, Damage: 50, FireCooldown: 5, TimeLimit: 30 * time.Second}, 2)
	f.start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	clients := make([]*gameconn.Client, 2)
	for i, p := range f.players {
		c, err := f.dial(ctx, f.token(p, nil))
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if acc := c.Accept(); int(acc.Slot) != i || len(acc.Players) != 2 || acc.Players[i] != p {
			t.Fatalf("accept %+v", acc)
		}
		clients[i] = c
	}
	snaps := make([][]wire.Snapshot, 2)
	for i, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); snaps[i] = bot(c) }()
	}
	res := f.waitResult()
	wg.Wait()

	if res.Reason != "score_limit" || res.SessionID != f.alloc.SessionID || len(res.Players) != 2 {
		t.Fatalf("result %+v", res)
	}
	if res.Winner == "" {
		t.Fatalf("no winner: %+v", res)
	}
	for _, p := range res.Players {
		if p.FlaggedInputs != 0 {
			t.Errorf("honest player %s flagged %d times", p.PlayerID, p.FlaggedInputs)
		}
		if p.InputsAccepted == 0 {
			t.Errorf("player %s: no input accepted", p.PlayerID)
		}
		if p.PlayerID == res.Winner && p.Score < 3 {
			t.Errorf("winner score %d", p.Score)
		}
	}
	for i, c := range clients {
		end, ok := c.End()
		if !ok || end.Reason != wire.EndScoreLimit || len(end.Scores) != 2 {
			t.Fatalf("client %d end %+v %v (err %v)", i, end, ok, c.Err())
		}
		if f.players[end.WinnerSlot].String() != res.Winner {
			t.Errorf("client %d: winner slot %d, result winner %s", i, end.WinnerSlot, res.Winner)
		}
		// Acks follow the inputs this player sent.
		last := snaps[i][len(snaps[i])-1]
		if last.AckSeq == 0 {
			t.Errorf("client %d: ack seq never advanced", i)
		}
	}
	// The server is free for the next allocation (fleet reuse).
	testenv.Eventually(t, 5*time.Second, func() error {
		if f.srv.Busy() {
			return errBusy
		}
		return nil
	})
}

var errBusy = ErrBusy

func TestCheaterCorrectedAndFlagged(t *testing.T) {
	testenv.CheckGoroutines(t)
	// The match lasts 45 ticks (the limit counts ticks, not wall time). In
	// an arena one unit wide (4 × MaxStep) the cheater is at most three
	// steps from a wall, so it reaches one however few of its inputs the
	// server gets to apply.
	f := newFixture(t, Config{ScoreLimit: 1000, TimeLimit: 1500 * time.Millisecond, ArenaW: wire.Q8, ArenaH: wire.Q8}, 2)
	f.start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	honest, err := f.dial(ctx, f.token(f.players[0], nil))
	if err != nil {
		t.Fatal(err)
	}
	cheat, err := f.dial(ctx, f.token(f.players[1], nil))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); bot(honest) }()

	// The cheater: teleports, runs through the wall, replays old inputs and
	// fires every tick.
	acc := cheat.Accept()
	var seen []wire.Snapshot
	seq := uint32(0)
	for snap := range cheat.Snapshots() {
		seen = append(seen, snap)
		seq++
		var in wire.Input
		switch seq % 4 {
		case 0:
			in = wire.Input{Seq: seq, DX: 30000, DY: -30000} // far beyond MaxStep
		case 1:
			in = wire.Input{Seq: seq, DX: int16(acc.MaxStep), Fire: true} // towards the +x wall
		case 2:
			in = wire.Input{Seq: seq - 1, DX: int16(acc.MaxStep)} // replayed seq
		case 3:
			in = wire.Input{Seq: seq, Fire: true, Aim: 0x8000}
		}
		if cheat.SendInput(in) != nil {
			break
		}
	}
	res := f.waitResult()
	wg.Wait()

	if res.Reason != "time_limit" {
		t.Fatalf("reason %q", res.Reason)
	}
	if res.Players[0].FlaggedInputs != 0 {
		t.Errorf("honest player flagged %d", res.Players[0].FlaggedInputs)
	}
	// A third of the cheater's accepted inputs are teleports, and replays
	// are flagged without being accepted: whatever number of inputs the
	// machine managed to deliver, at least a third of the accepted count
	// is flagged (two thirds when none is lost).
	if c := res.Players[1]; c.InputsAccepted == 0 || 3*c.FlaggedInputs < c.InputsAccepted {
		t.Errorf("cheater flagged %d times for %d accepted inputs", c.FlaggedInputs, c.InputsAccepted)
	}
	// Every snapshot keeps the cheater legal: inside the arena, and never
	// faster than MaxStep per tick.
	if len(seen) < 10 {
		t.Fatalf("only %d snapshots", len(seen))
	}
	var prev *wire.PlayerState
	var prevTick uint32
	var prevKills int32
	reachedWall := false
	for _, s := range seen {
		p := s.Players[acc.Slot]
		if kills := s.Players[1-acc.Slot].Score; kills != prevKills {
			prev, prevKills = nil, kills // killed and respawned: a legal jump
		}
		if p.X < 0 || p.X > acc.ArenaW || p.Y < 0 || p.Y > acc.ArenaH {
			t.Fatalf("tick %d: cheater at (%d,%d) outside the arena", s.Tick, p.X, p.Y)
		}
		if prev != nil {
			d := dist(prev, &p)
			if limit := float64(acc.MaxStep) * float64(s.Tick-prevTick); d > limit+1 {
				t.Fatalf("tick %d: cheater moved %.0f in %d ticks (limit %.0f)", s.Tick, d, s.Tick-prevTick, limit)
			}
		}
		reachedWall = reachedWall || p.X == acc.ArenaW || p.Y == 0
		prev, prevTick = &p, s.Tick
	}
	if !reachedWall {
		t.Fatalf("the cheater never reached the +x or -y wall in %d snapshots: the clamp was not exercised", len(seen))
	}
}

// rawStream sends HELLO with helloTok, opens KCP and sends JOIN with
// joinTok, and returns the first frame the server sends back (nil on none).
func rawStream(t *testing.T, f *fixture, helloTok, joinTok []byte) wire.Message {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if helloTok != nil {
		if _, err := pc.WriteTo(packet.AppendHello(nil, helloTok), f.addr); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kcp.NewConn3(12345, f.addr, nil, 0, 0, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	gameconn.TuneKCP(sess)
	if _, err := sess.Write(wire.AppendFrame(nil, wire.Join{Token: joinTok})); err != nil {
		t.Fatal(err)
	}
	sess.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	fr, err := wire.ReadFrame(bufio.NewReader(sess), make([]byte, wire.MaxFrame))
	if err != nil {
		return nil
	}
	m, err := wire.Decode(fr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestJoinRefused(t *testing.T) {
	testenv.CheckGoroutines(t)
	f := newFixture(t, Config{}, 2)
	f.start()
	p0, p1 := f.players[0], f.players[1]
	good := f.token(p0, nil)

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, err := connecttoken.Mint(otherKey, connecttoken.Token{
		SessionID: uuid.MustParse(f.alloc.SessionID), PlayerID: p0,
		ExpiresAt: time.Now().Add(time.Minute), ServerAddr: f.srv.Addr().(*net.UDPAddr).AddrPort(),
	})
	if err != nil {
		t.Fatal(err)
	}
	expired := f.token(p0, func(tk *connecttoken.Token) { tk.ExpiresAt = time.Now().Add(-time.Minute) })
	wrongSession := f.token(p0, func(tk *connecttoken.Token) { tk.SessionID = uuid.New() })
	stranger := f.token(uuid.New(), nil)

	cases := []struct {
		name string
		join []byte
		want wire.RefuseReason
	}{
		{"forged", forged, wire.RefuseInvalidToken},
		{"expired", expired, wire.RefuseExpired},
		{"wrong session", wrongSession, wire.RefuseWrongSession},
		{"not in match", stranger, wire.RefuseNotInMatch},
		{"other player's token", f.token(p1, nil), wire.RefuseWrongAddress},
		{"garbage", make([]byte, connecttoken.Size), wire.RefuseMalformed},
	}
	for _, tc := range cases {
		// A valid HELLO admits the address; the JOIN is checked on its own.
		// Each raw stream is a new address, so each needs its own token
		// (a token binds once per DGS).
		m := rawStream(t, f, f.token(p0, nil), tc.join)
		r, ok := m.(wire.Refuse)
		if !ok || r.Reason != tc.want {
			t.Errorf("%s: got %#v, want refuse %s", tc.name, m, tc.want)
		}
	}

	// Without a valid HELLO no KCP stream even exists: the client hears
	// nothing, and the datagrams are counted as unauthorised.
	before := f.srv.Stats().Unauthorised.Load()
	for _, tok := range [][]byte{forged, expired, wrongSession, stranger} {
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		_, err := f.dial(ctx, tok)
		cancel()
		if err == nil {
			t.Fatal("dial with a bad HELLO succeeded")
		}
	}
	if m := rawStream(t, f, nil, f.token(p0, nil)); m != nil {
		t.Errorf("stream without HELLO answered %#v", m)
	}
	if f.srv.Stats().Unauthorised.Load() == before {
		t.Error("no datagram counted as unauthorised")
	}

	// The real player still gets in, and a repeated HELLO is harmless.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := gameconn.Dial(ctx, gameconn.ClientConfig{Addr: f.addr, Token: good, Conn: pc})
	if err != nil {
		t.Fatalf("good dial: %v", err)
	}
	defer c.Close()
	nextSnapshot := func() wire.Snapshot {
		t.Helper()
		select {
		case s, ok := <-c.Snapshots():
			if !ok {
				t.Fatalf("stream ended: %v", c.Err())
			}
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no snapshot")
		}
		return wire.Snapshot{}
	}
	nextSnapshot()
	// Retransmitted / rebinding HELLOs from the same address, as the relay
	// forwards them, leave the stream alone.
	for range 3 {
		if _, err := pc.WriteTo(packet.AppendHello(nil, good), f.addr); err != nil {
			t.Fatal(err)
		}
	}
	first := nextSnapshot().Tick
	testenv.Eventually(t, 5*time.Second, func() error {
		if s := nextSnapshot(); s.Tick < first+5 {
			return errors.New("waiting for more ticks")
		}
		return nil
	})
	if got := f.srv.Stats().Joined.Load(); got != 1 {
		t.Errorf("joined %d", got)
	}
}

func TestAbandonedWhenNobodyJoins(t *testing.T) {
	testenv.CheckGoroutines(t)
	f := newFixture(t, Config{WaitForPlayers: 300 * time.Millisecond}, 2)
	f.start()
	if err := f.srv.StartMatch(f.alloc); err != ErrBusy {
		t.Fatalf("second StartMatch: %v", err)
	}
	res := f.waitResult()
	if res.Reason != "abandoned" || res.Winner != "" || res.WinnerTeam != -1 {
		t.Fatalf("result %+v", res)
	}
}
