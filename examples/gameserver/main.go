// Command gameserver is a minimal dedicated game server written against
// cellgrid's public API only (dgs/sdk, proto/...), from its own Go module:
// the proof that a studio can build its server outside this repository.
//
// The game is a click race: every INPUT with fire=1 scores a point; the
// first player to --score-limit points, or the leader at --time-limit, wins.
// Lifecycle: connect to the cell's NATS, announce Ready through the SDK,
// accept an allocation (keeping its connect keys), admit players whose JOIN
// carries a connect token for this session, stream SNAPSHOTs, send END,
// report the result exactly once (sdk.ReportResult) and go back to Ready.
//
// It takes the flags the cell's local launcher passes to a DGS (--cell --id
// --nats --addr --version), so `cellgrid cell --dgs-command` can run it.
// Unlike dgs/arena it does not pre-authorise client addresses from the
// relay's forwarded HELLO: it drops control datagrams and relies on the JOIN
// check alone (docs/protocol.md, section 6.4).
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/xtaci/kcp-go/v5"

	"github.com/cellgrid/cellgrid/dgs/sdk"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/packet"
	"github.com/cellgrid/cellgrid/proto/wire"
)

func main() {
	cell := flag.String("cell", "", "cell id (required)")
	id := flag.String("id", "", "server id, unique in the cell (required)")
	natsURL := flag.String("nats", nats.DefaultURL, "NATS URL of the cell")
	addr := flag.String("addr", "127.0.0.1:0", "UDP address of the game socket")
	version := flag.String("version", "example", "fleet version reported in heartbeats")
	scoreLimit := flag.Int("score-limit", 20, "points that win the match")
	timeLimit := flag.Duration("time-limit", 30*time.Second, "match duration")
	flag.Parse()
	if *cell == "" || *id == "" {
		fmt.Fprintln(os.Stderr, "gameserver: --cell and --id are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *cell, *id, *natsURL, *addr, *version, int32(*scoreLimit), *timeLimit); err != nil {
		slog.Error("gameserver", "err", err)
		os.Exit(1)
	}
}

// match is the allocated session; mu guards everything below it.
type match struct {
	mu       sync.Mutex
	alloc    events.Allocation
	verifier *connecttoken.Verifier
	started  time.Time
	scores   map[uuid.UUID]int32
	conns    map[uuid.UUID]*kcp.UDPSession
	over     bool
}

func run(ctx context.Context, cell, id, natsURL, addr, version string, scoreLimit int32, timeLimit time.Duration) error {
	nc, err := nats.Connect(natsURL, nats.Name("example-dgs-"+id))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("game socket: %w", err)
	}
	defer pc.Close()

	kit, err := sdk.New(sdk.Config{Cell: cell, ID: id, Version: version, GameAddr: pc.LocalAddr().String(), NATS: nc})
	if err != nil {
		return err
	}
	allocated := make(chan *match, 1)
	kit.HandleAllocate(func(a events.Allocation) error {
		var keys []ed25519.PublicKey
		for _, k := range a.ConnectKeys {
			pub, err := connecttoken.ParsePublicKey(k)
			if err != nil {
				return err
			}
			keys = append(keys, pub)
		}
		v, err := connecttoken.NewVerifier(keys...)
		if err != nil {
			return err
		}
		select {
		case allocated <- &match{alloc: a, verifier: v, started: time.Now(),
			scores: map[uuid.UUID]int32{}, conns: map[uuid.UUID]*kcp.UDPSession{}}:
			return nil
		default:
			return errors.New("a match is already starting")
		}
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A shutdown request means "after the current match": stop now when
	// idle, else when the match has ended. Handlers run on the SDK's
	// goroutine and must not block.
	var draining atomic.Bool
	kit.HandleShutdownRequest(func() {
		draining.Store(true)
		if state, _ := kit.State(); state != events.DGSAllocated {
			cancel()
		}
	})
	sdkDone := make(chan error, 1)
	go func() { sdkDone <- kit.Run(ctx) }()
	defer func() { cancel(); <-sdkDone; _ = kit.Shutdown() }()

	// The relay forwards the client's HELLO before any KCP: drop control
	// datagrams so kcp-go only sees KCP segments.
	ln, err := kcp.ServeConn(nil, 0, 0, controlFilter{pc})
	if err != nil {
		return fmt.Errorf("kcp: %w", err)
	}
	defer ln.Close()
	var cur struct {
		sync.Mutex
		m *match
	}
	go func() {
		for {
			sess, err := ln.AcceptKCP()
			if err != nil {
				return
			}
			cur.Lock()
			m := cur.m
			cur.Unlock()
			go serve(sess, m, scoreLimit)
		}
	}()

	if err := kit.Ready(); err != nil {
		return err
	}
	slog.Info("ready", "cell", cell, "id", id, "game_addr", pc.LocalAddr())
	for {
		var m *match
		select {
		case <-ctx.Done():
			return nil
		case m = <-allocated:
		}
		cur.Lock()
		cur.m = m
		cur.Unlock()
		slog.Info("allocated", "session", m.alloc.SessionID, "players", len(m.alloc.Players))
		res := play(ctx, m, scoreLimit, timeLimit)
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := kit.ReportResult(rctx, res) // exactly once: Nats-Msg-Id = session id
		rcancel()
		if err != nil {
			slog.Error("report result", "session", res.SessionID, "err", err)
		}
		slog.Info("match over", "session", res.SessionID, "reason", res.Reason, "winner", res.Winner)
		if ctx.Err() != nil || draining.Load() {
			return nil
		}
		if err := kit.Ready(); err != nil {
			return err
		}
	}
}

// serve admits one KCP stream: JOIN with a valid token for this match, then
// INPUTs until the stream or the match ends.
func serve(sess *kcp.UDPSession, m *match, scoreLimit int32) {
	defer sess.Close()
	sess.SetNoDelay(wire.KCPNoDelay, wire.KCPInterval, wire.KCPResend, wire.KCPNoCongestion)
	sess.SetWindowSize(wire.KCPSendWnd, wire.KCPRecvWnd)
	_ = sess.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(sess)
	buf := make([]byte, wire.MaxFrame)
	refuse := func(reason wire.RefuseReason) { _, _ = sess.Write(wire.AppendFrame(nil, wire.Refuse{Reason: reason})) }
	frame, err := wire.ReadFrame(r, buf)
	if err != nil {
		return
	}
	msg, err := wire.Decode(frame)
	join, ok := msg.(wire.Join)
	if err != nil || !ok {
		refuse(wire.RefuseMalformed)
		return
	}
	if m == nil {
		refuse(wire.RefuseWrongSession)
		return
	}
	tok, err := m.verifier.Verify(join.Token, time.Now())
	switch {
	case errors.Is(err, connecttoken.ErrExpired):
		refuse(wire.RefuseExpired)
		return
	case err != nil:
		refuse(wire.RefuseInvalidToken)
		return
	case tok.SessionID.String() != m.alloc.SessionID:
		refuse(wire.RefuseWrongSession)
		return
	case !slices.Contains(m.alloc.Players, tok.PlayerID.String()):
		refuse(wire.RefuseNotInMatch)
		return
	}
	m.mu.Lock()
	if m.over {
		m.mu.Unlock()
		refuse(wire.RefuseMatchOver)
		return
	}
	if old := m.conns[tok.PlayerID]; old != nil {
		old.Close() // a rejoin replaces the older stream
	}
	m.conns[tok.PlayerID] = sess
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.conns[tok.PlayerID] == sess {
			delete(m.conns, tok.PlayerID)
		}
		m.mu.Unlock()
	}()
	accept := wire.Accept{Slot: uint8(slices.Index(m.alloc.Players, tok.PlayerID.String())), TickRate: 10,
		ArenaW: 100 * wire.Q8, ArenaH: 100 * wire.Q8, MaxStep: wire.Q8, FireCooldown: 0}
	for _, p := range m.alloc.Players {
		accept.Players = append(accept.Players, uuid.MustParse(p))
	}
	if _, err := sess.Write(wire.AppendFrame(nil, accept)); err != nil {
		return
	}
	var lastSeq uint32
	for {
		_ = sess.SetReadDeadline(time.Now().Add(30 * time.Second))
		frame, err := wire.ReadFrame(r, buf)
		if err != nil {
			return
		}
		if frame[0] != byte(wire.TypeInput) {
			return // a client sends only INPUT after JOIN
		}
		in, err := wire.DecodeInput(frame[1:])
		if err != nil || in.Seq <= lastSeq {
			continue // malformed or stale: ignore
		}
		lastSeq = in.Seq
		if in.Fire {
			m.mu.Lock()
			if !m.over && m.scores[tok.PlayerID] < scoreLimit {
				m.scores[tok.PlayerID]++
			}
			m.mu.Unlock()
		}
	}
}

// play runs the match clock: a SNAPSHOT every 100 ms until the score or
// time limit, then END to every player. It returns the result to report.
func play(ctx context.Context, m *match, scoreLimit int32, timeLimit time.Duration) events.MatchResult {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(timeLimit)
	reason, tick := wire.EndTimeLimit, uint32(0)
loop:
	for {
		select {
		case <-ctx.Done():
			reason = wire.EndAbandoned
			break loop
		case <-deadline:
			break loop
		case <-t.C:
		}
		tick++
		m.mu.Lock()
		snap := wire.Snapshot{Tick: tick}
		done := false
		for i, p := range m.alloc.Players {
			s := m.scores[uuid.MustParse(p)]
			done = done || s >= scoreLimit
			var flags uint8 = wire.FlagAlive
			if m.conns[uuid.MustParse(p)] != nil {
				flags |= wire.FlagConnected
			}
			snap.Players = append(snap.Players, wire.PlayerState{Slot: uint8(i), Health: 100, Score: s, Flags: flags})
		}
		broadcastLocked(m, wire.AppendFrame(nil, snap))
		m.mu.Unlock()
		if done {
			reason = wire.EndScoreLimit
			break
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.over = true
	end := wire.End{Reason: reason, WinnerSlot: wire.NoWinner}
	res := events.MatchResult{SessionID: m.alloc.SessionID, GameMode: m.alloc.GameMode, StartedAt: m.started,
		EndedAt: time.Now().UTC(), WinnerTeam: -1, Reason: reason.String()}
	best, tie := int32(-1), false
	for i, p := range m.alloc.Players {
		s := m.scores[uuid.MustParse(p)]
		end.Scores = append(end.Scores, wire.SlotScore{Slot: uint8(i), Score: s})
		res.Players = append(res.Players, events.PlayerResult{PlayerID: p, Team: i, Score: int64(s)})
		switch {
		case s > best:
			best, tie, end.WinnerSlot, res.Winner, res.WinnerTeam = s, false, uint8(i), p, i
		case s == best:
			tie = true
		}
	}
	if tie {
		end.WinnerSlot, res.Winner, res.WinnerTeam = wire.NoWinner, "", -1
	}
	broadcastLocked(m, wire.AppendFrame(nil, end))
	for _, c := range m.conns {
		go func() { time.Sleep(time.Second); c.Close() }() // let END drain
	}
	return res
}

func broadcastLocked(m *match, frame []byte) {
	for _, c := range m.conns {
		_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = c.Write(frame)
	}
}

// controlFilter hides relay control datagrams (packet.IsControl) from
// kcp-go.
type controlFilter struct{ net.PacketConn }

func (f controlFilter) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := f.PacketConn.ReadFrom(b)
		if err != nil || !packet.IsControl(b[:n]) {
			return n, addr, err
		}
	}
}
