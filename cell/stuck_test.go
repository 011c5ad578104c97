package cell

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/cell/session"
	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/packet"
)

// TestAbandonedMatchIsRequeuedAndItsServerReleased: the first match's
// handler hangs after the server was allocated and the session recorded
// (a matchmaker wedged between claim and ready). The janitor puts the
// tickets back in the queue, which clients see; the hung handler's
// MarkReady then fails, so the cell gives the server back and aborts the
// session; a second match readies the players.
func TestAbandonedMatchIsRequeuedAndItsServerReleased(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	firstSession := make(chan string, 1)
	e := newEnvHooked(t, func(c *Config) {
		c.Janitor = matchmaker.JanitorConfig{Deadline: 500 * time.Millisecond, Interval: 50 * time.Millisecond}
		c.Matchmaker.HandlerTimeout = 5 * time.Second
		// No result before the handler gives up: the match waits.
		c.DGS.Args = append(c.DGS.Args, "--wait-for-players=60s")
	}, func(c *Cell) {
		ready := c.markReady
		c.markReady = func(ctx context.Context, m matchmaker.Match, doc string, tokens map[string]string) error {
			mu.Lock()
			calls++
			first := calls == 1
			mu.Unlock()
			if first {
				firstSession <- m.SessionID
				<-ctx.Done() // wedged until HandlerTimeout
			}
			return ready(ctx, m, doc, tokens)
		}
	})
	ctx := context.Background()
	ps := newPlayers(2)
	t1, t2 := e.join(t, ps[0], "duel"), e.join(t, ps[1], "duel")
	var sessA string
	select {
	case sessA = <-firstSession:
	case <-time.After(60 * time.Second):
		t.Fatal("no match")
	}
	// Hold the pool's lease so the matchmaker cannot rematch at once:
	// the requeued state stays observable.
	lease := "cg:{" + cellID + "}:lease:duel"
	testenv.Eventually(t, 10*time.Second, func() error {
		return e.rd.Do(ctx, e.rd.B().Set().Key(lease).Value("test").Px(time.Minute).Build()).Error()
	})
	for i, tk := range []string{t1, t2} {
		testenv.Eventually(t, 20*time.Second, func() error {
			v, code := e.status(t, ps[i], tk)
			if code != 200 || v.State != matchmaker.StateQueued || v.RequeueReason != matchmaker.RequeueAbandoned {
				return fmt.Errorf("status %d %+v", code, v)
			}
			return nil
		})
	}
	// The wedged handler gives up: its session is aborted, its server
	// released.
	testenv.Eventually(t, 30*time.Second, func() error {
		var st string
		if err := e.db.QueryRow(ctx, `SELECT status FROM game_sessions WHERE id = $1`, sessA).Scan(&st); err != nil || st != session.StatusAborted {
			return fmt.Errorf("session %s: %q %v", sessA, st, err)
		}
		for _, s := range e.c.Fleet().Servers() {
			if s.SessionID == sessA && s.State == events.DGSAllocated {
				return fmt.Errorf("server %s still allocated to the abandoned session", s.ID)
			}
		}
		return nil
	})
	if live, err := e.c.sessions.SessionLive(ctx, uuid.MustParse(sessA)); err != nil || live {
		t.Fatalf("abandoned session still live: %v %v", live, err)
	}
	// The pool is free again: the tickets get a new match.
	if err := e.rd.Do(ctx, e.rd.B().Del().Key(lease).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	v1, v2 := e.waitReady(t, ps[0], t1), e.waitReady(t, ps[1], t2)
	if v1.Session.ID != v2.Session.ID || v1.Session.ID == sessA {
		t.Fatalf("sessions %s %s (abandoned %s)", v1.Session.ID, v2.Session.ID, sessA)
	}
}

// TestMarkReadyFailureReleasesServer: when MarkReady fails (Redis error),
// the server is given back, the session aborted and the tickets matched
// again.
func TestMarkReadyFailureReleasesServer(t *testing.T) {
	var mu sync.Mutex
	var failed []string
	e := newEnvHooked(t, func(c *Config) {
		c.DGS.Args = append(c.DGS.Args, "--wait-for-players=60s")
	}, func(c *Cell) {
		ready := c.markReady
		c.markReady = func(ctx context.Context, m matchmaker.Match, doc string, tokens map[string]string) error {
			mu.Lock()
			defer mu.Unlock()
			if len(failed) == 0 {
				failed = append(failed, m.SessionID)
				return fmt.Errorf("mark ready: %w", net.ErrClosed)
			}
			return ready(ctx, m, doc, tokens)
		}
	})
	ctx := context.Background()
	ps := newPlayers(2)
	t1, t2 := e.join(t, ps[0], "duel"), e.join(t, ps[1], "duel")
	v1, v2 := e.waitReady(t, ps[0], t1), e.waitReady(t, ps[1], t2)
	mu.Lock()
	sessA := failed[0]
	mu.Unlock()
	if v1.Session.ID != v2.Session.ID || v1.Session.ID == sessA {
		t.Fatalf("sessions %s %s (failed %s)", v1.Session.ID, v2.Session.ID, sessA)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var st string
		if err := e.db.QueryRow(ctx, `SELECT status FROM game_sessions WHERE id = $1`, sessA).Scan(&st); err != nil || st != session.StatusAborted {
			return fmt.Errorf("session %s: %q %v", sessA, st, err)
		}
		for _, s := range e.c.Fleet().Servers() {
			if s.SessionID == sessA && s.State == events.DGSAllocated {
				return fmt.Errorf("server %s still allocated to the failed session", s.ID)
			}
		}
		return nil
	})
	if live, err := e.c.sessions.SessionLive(ctx, uuid.MustParse(sessA)); err != nil || live {
		t.Fatalf("failed session still live: %v %v", live, err)
	}
}

// TestRunningMatchSurvivesRedisRestart: Redis restarts (every key lost)
// during a match. The cell rebuilds the live session from the database,
// so the bound client's rebinding HELLO is still accepted; the
// replay guard still refuses a token minted before the restart that has
// no binding to move (it cannot tell whether it was used).
func TestRunningMatchSurvivesRedisRestart(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DGS.Args = append(c.DGS.Args, "--wait-for-players=1s", "--time-limit=60s")
		c.SessionRestoreInterval = 50 * time.Millisecond
	})
	ps := newPlayers(2)
	t1, t2 := e.join(t, ps[0], "duel"), e.join(t, ps[1], "duel")
	v1, v2 := e.waitReady(t, ps[0], t1), e.waitReady(t, ps[1], t2)
	sid := uuid.MustParse(v1.Session.ID)
	raw1, _ := connecttoken.DecodeString(v1.Session.ConnectToken)
	raw2, _ := connecttoken.DecodeString(v2.Session.ConnectToken)
	ra, err := net.ResolveUDPAddr("udp", e.c.RelayAddr())
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	gc, err := gameconn.Dial(dctx, gameconn.ClientConfig{Addr: ra, Token: raw1})
	if err != nil {
		t.Fatalf("play through the relay: %v", err)
	}
	defer gc.Close()

	// The guard knows its Redis's start only to the second (INFO uptime):
	// restart once player 1's token is more than a second old.
	tok2, err := connecttoken.Parse(raw2)
	if err != nil {
		t.Fatal(err)
	}
	minted := tok2.ExpiresAt.Add(-e.c.cfg.ConnectTokenTTL)
	testenv.Eventually(t, 10*time.Second, func() error {
		if age := time.Since(minted); age < 1100*time.Millisecond {
			return fmt.Errorf("token 2 is %v old", age)
		}
		return nil
	})
	e.rds.Restart(t)
	ctx := context.Background()
	testenv.Eventually(t, 20*time.Second, func() error {
		live, err := e.c.sessions.SessionLive(ctx, sid)
		if err != nil || !live {
			return fmt.Errorf("session live after the restart: %v %v", live, err)
		}
		return nil
	})

	// Player 0's address changes (NAT rebinding): its HELLO with the token
	// it holds must still be taken for a live session (WELCOME, or a
	// return-routability challenge), not refused as session_not_live.
	if got := hello(t, e.c.RelayAddr(), raw1); got.Type == packet.TypeReject {
		t.Fatalf("rebinding after the restart: REJECT %v", got.Reason)
	}
	// Player 1's token predates the restart and has no binding.
	if got := hello(t, e.c.RelayAddr(), raw2); got.Type != packet.TypeReject || got.Reason != packet.RejectReplayed {
		t.Fatalf("pre-restart token without a binding: %+v, want REJECT replayed", got)
	}
}

// hello sends a HELLO from a fresh socket and returns the relay's answer
// (sending again on silence or REJECT unavailable, as a client does).
func hello(t *testing.T, relayAddr string, token []byte) packet.Control {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(relayAddr))
	buf := make([]byte, 2048)
	for attempt := 0; attempt < 10; attempt++ {
		if _, err := c.WriteTo(packet.AppendHello(nil, token), to); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			continue // lost or queued: send again
		}
		ctl, err := packet.ParseControl(buf[:n])
		if err != nil {
			t.Fatalf("answer to HELLO: %v", err)
		}
		if ctl.Type == packet.TypeReject && ctl.Reason == packet.RejectUnavailable {
			continue // Redis still reconnecting: the client retries
		}
		return ctl
	}
	t.Fatal("no answer to HELLO")
	return packet.Control{}
}
