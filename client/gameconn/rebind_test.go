package gameconn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/dgs/arena"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/wire"
	"github.com/cellgrid/cellgrid/relay"
)

// rig is a real arena server behind a real relay, with one allocated
// match for two players.
type rig struct {
	relayAddr *net.UDPAddr
	tokens    [2][]byte
	results   chan events.MatchResult
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startRig(t *testing.T, timeLimit time.Duration) *rig {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{results: make(chan events.MatchResult, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	gamePC := listenUDP(t)
	srv, err := arena.New(arena.Config{TimeLimit: timeLimit, Linger: 200 * time.Millisecond, Log: quiet(),
		OnMatchEnd: func(res events.MatchResult) { r.results <- res }}, gamePC)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Run(ctx) }()

	session := uuid.New()
	players := [2]uuid.UUID{uuid.New(), uuid.New()}
	if err := srv.StartMatch(events.Allocation{SessionID: session.String(), GameMode: "arena",
		Players:     []string{players[0].String(), players[1].String()},
		ConnectKeys: []string{base64.StdEncoding.EncodeToString(pub)}}); err != nil {
		t.Fatal(err)
	}

	verifier, err := connecttoken.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	relayPC := listenUDP(t)
	rl, err := relay.New(relay.Config{}, relay.Deps{Conn: relayPC, Verifier: verifier,
		Sessions: relay.NewStaticSessions(session), Replay: relay.NewMemoryReplayGuard(),
		Log: quiet(), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = rl.Run(ctx) }()
	r.relayAddr = relayPC.LocalAddr().(*net.UDPAddr)

	for i, p := range players {
		r.tokens[i], err = connecttoken.Mint(priv, connecttoken.Token{SessionID: session, PlayerID: p,
			ExpiresAt: time.Now().Add(time.Minute), ServerAddr: gamePC.LocalAddr().(*net.UDPAddr).AddrPort()})
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// play sends one input per snapshot until the stream ends. After
// `before` snapshots it calls move once; it then counts the snapshots that
// arrive and the highest input seq the server acknowledged after the move.
type play struct {
	seen, after int
	movedAtSeq  uint32
	ackedAfter  uint32
	end         wire.End
	ended       bool
	err         error
}

func playMatch(c *gameconn.Client, before int, move func() error) (p play) {
	// A client whose datagrams the relay drops would wait forever: close
	// it well after the match's time limit, so the test fails instead.
	stuck := time.AfterFunc(20*time.Second, func() { c.Close() })
	defer stuck.Stop()
	var seq uint32
	moved := move == nil
	for snap := range c.Snapshots() {
		p.seen++
		if moved && p.movedAtSeq > 0 {
			p.after++
			p.ackedAfter = max(p.ackedAfter, snap.AckSeq)
		}
		if !moved && p.seen >= before {
			moved = true
			if err := move(); err != nil {
				p.err = err
				break
			}
			p.movedAtSeq = seq + 1
		}
		seq++
		if err := c.SendInput(wire.Input{Seq: seq}); err != nil {
			break
		}
	}
	for range c.Snapshots() {
	}
	p.end, p.ended = c.End()
	if p.err == nil {
		p.err = c.Err()
	}
	return p
}

// nat stands in for a home router: the client talks to its inside socket,
// it talks to the relay from an outside socket, and rebind() swaps the
// outside socket for one with a new port, as a NAT whose mapping expired
// does. The client is not told.
type nat struct {
	inside *net.UDPConn
	relay  *net.UDPAddr
	mu     sync.Mutex
	out    *net.UDPConn   // guarded by mu
	client netip.AddrPort // guarded by mu
	wg     sync.WaitGroup
}

func startNAT(t *testing.T, relayAddr *net.UDPAddr) *nat {
	n := &nat{inside: listenUDP(t), relay: relayAddr}
	n.wg.Add(1)
	go func() { // inside → relay
		defer n.wg.Done()
		buf := make([]byte, 2048)
		for {
			k, from, err := n.inside.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.client = from
			out := n.out
			n.mu.Unlock()
			_, _ = out.WriteToUDP(buf[:k], n.relay)
		}
	}()
	n.rebind(t)
	t.Cleanup(func() {
		n.inside.Close()
		n.mu.Lock()
		n.out.Close()
		n.mu.Unlock()
		n.wg.Wait()
	})
	return n
}

func (n *nat) rebind(t *testing.T) {
	out := listenUDP(t)
	n.mu.Lock()
	old := n.out
	n.out = out
	n.mu.Unlock()
	if old != nil {
		old.Close() // replies to the old mapping are lost
	}
	n.wg.Add(1)
	go func() { // relay → inside, from this mapping only
		defer n.wg.Done()
		buf := make([]byte, 2048)
		for {
			k, _, err := out.ReadFromUDP(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			to := n.client
			n.mu.Unlock()
			_, _ = n.inside.WriteToUDPAddrPort(buf[:k], to)
		}
	}()
}

func (n *nat) addr() *net.UDPAddr { return n.inside.LocalAddr().(*net.UDPAddr) }

// checkRecovered asserts that the moved player kept playing: snapshots
// kept coming, the server acknowledged inputs sent after the move, and the
// match ran to its time limit with both players.
func checkRecovered(t *testing.T, r *rig, moved play, other play) {
	t.Helper()
	if moved.err != nil || other.err != nil {
		t.Fatalf("stream errors: moved %v, other %v", moved.err, other.err)
	}
	// At 30 Hz the match has ~60 ticks left after the move.
	if moved.after < 20 || moved.ackedAfter <= moved.movedAtSeq {
		t.Fatalf("after moving: %d snapshots, acked seq %d (first input after the move: %d); the relay still drops the client as unbound",
			moved.after, moved.ackedAfter, moved.movedAtSeq)
	}
	if !moved.ended || moved.end.Reason != wire.EndTimeLimit || !other.ended || other.end.Reason != wire.EndTimeLimit {
		t.Fatalf("ends: moved %v %+v, other %v %+v", moved.ended, moved.end, other.ended, other.end)
	}
	select {
	case res := <-r.results:
		if res.Reason != "time_limit" || len(res.Players) != 2 {
			t.Fatalf("result %+v", res)
		}
		for _, p := range res.Players {
			if p.InputsAccepted == 0 {
				t.Fatalf("player %s: no input accepted: %+v", p.PlayerID, res.Players)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no match result")
	}
}

func dialBoth(t *testing.T, r *rig, addrs [2]*net.UDPAddr) [2]*gameconn.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cs [2]*gameconn.Client
	for i := range cs {
		c, err := gameconn.Dial(ctx, gameconn.ClientConfig{Addr: addrs[i], Token: r.tokens[i]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs
}

// TestRebindMidMatch: the client moves to a new local socket mid-match
// (Rebind) and keeps playing through the real relay.
func TestRebindMidMatch(t *testing.T) {
	r := startRig(t, 4*time.Second)
	cs := dialBoth(t, r, [2]*net.UDPAddr{r.relayAddr, r.relayAddr})
	var moved, other play
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		moved = playMatch(cs[0], 30, func() error {
			nc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return err
			}
			return cs[0].Rebind(nc)
		})
	}()
	go func() { defer wg.Done(); other = playMatch(cs[1], 0, nil) }()
	wg.Wait()
	checkRecovered(t, r, moved, other)
}

// TestNATRebindingMidMatch: a NAT gives the client a new public address
// mid-match without telling it; the client notices the silence, re-sends
// HELLO and the relay moves its binding.
func TestNATRebindingMidMatch(t *testing.T) {
	r := startRig(t, 5*time.Second)
	n := startNAT(t, r.relayAddr)
	cs := dialBoth(t, r, [2]*net.UDPAddr{n.addr(), r.relayAddr})
	var moved, other play
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		moved = playMatch(cs[0], 30, func() error { n.rebind(t); return nil })
	}()
	go func() { defer wg.Done(); other = playMatch(cs[1], 0, nil) }()
	wg.Wait()
	checkRecovered(t, r, moved, other)
}

func TestRebindAfterCloseIsRefused(t *testing.T) {
	r := startRig(t, 2*time.Second)
	cs := dialBoth(t, r, [2]*net.UDPAddr{r.relayAddr, r.relayAddr})
	cs[0].Close()
	nc := listenUDP(t)
	if err := cs[0].Rebind(nc); !errors.Is(err, gameconn.ErrClosed) {
		t.Fatalf("Rebind after Close: %v", err)
	}
	if _, err := nc.WriteToUDP([]byte("x"), r.relayAddr); err == nil {
		t.Fatal(fmt.Errorf("Rebind after Close left the new socket open"))
	}
}
