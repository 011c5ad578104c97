package cell

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/cell/session"
	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
)

func TestDuelEndToEnd(t *testing.T) {
	// The match starts with whoever joined after a second and lasts two.
	e := newEnv(t, func(c *Config) { c.DGS.Args = append(c.DGS.Args, "--wait-for-players=1s", "--time-limit=2s") })
	ps := newPlayers(2)
	t1, t2 := e.join(t, ps[0], "duel"), e.join(t, ps[1], "duel")
	v1, v2 := e.waitReady(t, ps[0], t1), e.waitReady(t, ps[1], t2)
	if v1.Session == nil || v2.Session == nil || v1.Session.ID != v2.Session.ID {
		t.Fatalf("sessions %+v %+v", v1.Session, v2.Session)
	}
	s := v1.Session
	if s.RelayAddr != e.c.RelayAddr() || s.GameMode != "duel" || s.Region != cellID {
		t.Fatalf("session %+v (relay %s)", s, e.c.RelayAddr())
	}
	ver, _ := connecttoken.NewVerifier(e.c.ConnectPublicKey())
	var game netip.AddrPort
	for i, v := range []ticketView{v1, v2} {
		raw, err := connecttoken.DecodeString(v.Session.ConnectToken)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ver.Verify(raw, time.Now())
		if err != nil || tok.PlayerID.String() != ps[i] || tok.SessionID.String() != s.ID || !tok.ExpiresAt.Equal(v.Session.ExpiresAt) {
			t.Fatalf("token of player %d: %+v %v", i, tok, err)
		}
		game = tok.ServerAddr
	}
	var dgsID, dgsAddr string
	var dgsPort int
	if err := e.db.QueryRow(context.Background(), `SELECT dgs_id, dgs_addr, dgs_port FROM game_sessions WHERE id = $1`, s.ID).Scan(&dgsID, &dgsAddr, &dgsPort); err != nil {
		t.Fatal(err)
	}
	if netip.AddrPortFrom(netip.MustParseAddr(dgsAddr), uint16(dgsPort)) != game {
		t.Fatalf("token points at %v, session at %s:%d", game, dgsAddr, dgsPort)
	}

	// Player 0 plays through the relay: the DGS accepts the JOIN.
	raw, _ := connecttoken.DecodeString(v1.Session.ConnectToken)
	ra, err := net.ResolveUDPAddr("udp", e.c.RelayAddr())
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	gc, err := gameconn.Dial(dctx, gameconn.ClientConfig{Addr: ra, Token: raw})
	if err != nil {
		t.Fatalf("play through the relay: %v", err)
	}
	defer gc.Close()
	// The relay recorded the token's nonce in the cell's Redis guard (a
	// HELLO from a new address with the same token moves the binding, by
	// the relay's design, so the guard is checked directly).
	parsed, _ := connecttoken.Parse(raw)
	if first, err := session.NewReplayGuard(e.rd, cellID, 0).FirstUse(context.Background(), parsed.Nonce, time.Minute); err != nil || first {
		t.Fatalf("nonce not recorded by the relay: first=%v %v", first, err)
	}

	// The DGS ends the match (time limit), tells the player and publishes
	// the result; the cell ends the session everywhere.
	select {
	case <-gc.Done():
	case <-dctx.Done():
		t.Fatal("no END for the player")
	}
	if end, ok := gc.End(); !ok {
		t.Fatalf("stream ended without END: %v", gc.Err())
	} else {
		t.Logf("match ended: %+v", end)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var st string
		if err := e.db.QueryRow(context.Background(), `SELECT status FROM game_sessions WHERE id = $1`, s.ID).Scan(&st); err != nil || st != "ended" {
			return fmt.Errorf("status %q %v", st, err)
		}
		return nil
	})
	if live, err := e.c.sessions.SessionLive(context.Background(), uuid.MustParse(s.ID)); err != nil || live {
		t.Fatalf("session still live after its result: %v %v", live, err)
	}
	js, _ := jetstream.New(e.nc)
	stream, err := js.Stream(context.Background(), events.MatchStream(cellID))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"found", "started", "ended"} {
		testenv.Eventually(t, 10*time.Second, func() error {
			m, err := stream.GetLastMsgForSubject(context.Background(), events.SessionEventSubject(cellID, kind))
			if err != nil {
				return err
			}
			var ev events.SessionEvent
			if err := json.Unmarshal(m.Data, &ev); err != nil || ev.SessionID != s.ID || ev.Kind != kind || len(ev.Players) != 2 {
				return fmt.Errorf("%s event %+v %v", kind, ev, err)
			}
			return nil
		})
	}
}

func TestPartyStaysTogether(t *testing.T) {
	e := newEnv(t, nil)
	ps := newPlayers(4)
	e.formParty(t, ps[0], ps[1])
	owner := e.join(t, ps[0], "duo", ps[1])
	e.join(t, ps[2], "duo")
	e.join(t, ps[3], "duo")
	v := e.waitReady(t, ps[0], owner)
	// The party member reads the owner's ticket (their latest) and gets
	// their own token for the same session.
	var mv ticketView
	if res := e.call(t, "GET", "/matchmaking/status", ps[1], nil, &mv); res.StatusCode != 200 || mv.Session == nil || mv.Session.ID != v.Session.ID || mv.Session.ConnectToken == v.Session.ConnectToken {
		t.Fatalf("party member status: %d %+v", res.StatusCode, mv)
	}
	rows, err := e.db.Query(context.Background(), `SELECT player_id::TEXT, team FROM game_session_players WHERE session_id = $1`, v.Session.ID)
	if err != nil {
		t.Fatal(err)
	}
	team := map[string]int{}
	for rows.Next() {
		var p string
		var tm int
		if err := rows.Scan(&p, &tm); err != nil {
			t.Fatal(err)
		}
		team[p] = tm
	}
	rows.Close()
	if len(team) != 4 || team[ps[0]] != team[ps[1]] || team[ps[2]] != team[ps[3]] || team[ps[0]] == team[ps[2]] {
		t.Fatalf("teams %v (party %s %s)", team, ps[0], ps[1])
	}
}

func TestSkillFromPlayersTable(t *testing.T) {
	e := newEnv(t, nil)
	ps := newPlayers(2)
	ctx := context.Background()
	testenv.NewPlayerWith(t, e.db, testenv.Player{ID: ps[0], Username: "hi", EloRating: 1900})
	t0, t1 := e.join(t, ps[0], "duel"), e.join(t, ps[1], "duel")
	tk0, _ := e.c.tickets.Get(ctx, t0)
	tk1, _ := e.c.tickets.Get(ctx, t1)
	if tk0.Rating != 1900 || tk1.Rating != 1000 {
		t.Fatalf("ratings %d %d, want 1900 (table) and 1000 (default)", tk0.Rating, tk1.Rating)
	}
	if n, _ := e.rd.Do(ctx, e.rd.B().Exists().Key(e.c.tickets.Key("elo", ps[0])).Build()).AsInt64(); n != 1 {
		t.Fatal("rating not cached in Redis")
	}
	// 900 apart: never inside a ±200 window.
	if v, _ := e.status(t, ps[0], t0); v.State != matchmaker.StateQueued {
		t.Fatalf("far-apart pair: %s", v.State)
	}
}

// TestThousandConcurrentJoins: 1,000 players join squads from 8 goroutines;
// every player ends in exactly one session, no server ever runs two
// sessions at once, and DGSs are reused (short matches) across 125 matches.
func TestThousandConcurrentJoins(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DGS.Args = append(c.DGS.Args, "--wait-for-players=100ms") // nobody joins: abandoned
		c.Fleet.Buffer, c.Fleet.Max = 4, 8
	})
	const n, workers = 1000, 8
	ps := newPlayers(n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				e.join(t, ps[i], "squads")
			}
		}()
	}
	wg.Wait()
	ctx := context.Background()
	testenv.Eventually(t, 120*time.Second, func() error {
		var sessions, ended, players, distinct int
		if err := e.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'ended') FROM game_sessions`).Scan(&sessions, &ended); err != nil {
			return err
		}
		if err := e.db.QueryRow(ctx, `SELECT count(*), count(DISTINCT player_id) FROM game_session_players`).Scan(&players, &distinct); err != nil {
			return err
		}
		if players != distinct {
			t.Fatalf("%d seats for %d distinct players: a player is in two matches", players, distinct)
		}
		if sessions != n/8 || ended != n/8 || players != n {
			var other []string
			rows, err := e.db.Query(ctx, `SELECT id::TEXT || ' ' || status || ' ' || dgs_id FROM game_sessions WHERE status <> 'ended' LIMIT 5`)
			if err == nil {
				other, _ = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			return fmt.Errorf("%d sessions (%d ended), %d players; not ended: %v", sessions, ended, players, other)
		}
		return nil
	})
	rows, err := e.db.Query(ctx, `SELECT dgs_id, started_at, ended_at FROM game_sessions`)
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ start, end time.Time }
	byDGS := map[string][]span{}
	for rows.Next() {
		var id string
		var s span
		if err := rows.Scan(&id, &s.start, &s.end); err != nil {
			t.Fatal(err)
		}
		byDGS[id] = append(byDGS[id], s)
	}
	rows.Close()
	for id, spans := range byDGS {
		sort.Slice(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
		for i := 1; i < len(spans); i++ {
			if spans[i].start.Before(spans[i-1].end) {
				t.Fatalf("server %s allocated at %v while its match of %v–%v ran", id, spans[i].start, spans[i-1].start, spans[i-1].end)
			}
		}
	}
	t.Logf("125 matches on %d servers", len(byDGS))
}
