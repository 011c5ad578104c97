package results_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/results"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// recordSession is what the cell writes when a DGS accepted a match.
func recordSession(t *testing.T, pool *pgxpool.Pool, session, dgs string, players ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO game_sessions (id, game_mode, region, status, dgs_id) VALUES ($1, 'duel', 'eu-west-1', 'running', $2)`, session, dgs); err != nil {
		t.Fatal(err)
	}
	for i, p := range players {
		if _, err := pool.Exec(ctx, `INSERT INTO game_session_players (session_id, player_id, team) VALUES ($1, $2, $3)`, session, p, i); err != nil {
			t.Fatal(err)
		}
	}
}

type ledgerState struct {
	xp, gold int64
	board    string
}

func TestResultsNeedProvenance(t *testing.T) {
	d := testenv.NewDatabase(t)
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global", "eu-west-1")
	rd := testenv.NewRedis(t)
	ctx := context.Background()
	jsEU, _ := jetstream.New(testenv.Connect(t, sc.Server("eu-west-1")))
	cellMatchStream(t, jsEU, "eu-west-1")
	jsG, _ := jetstream.New(testenv.Connect(t, sc.Server("global")))
	lb, err := leaderboard.New(leaderboard.Config{
		Boards: []leaderboard.Definition{{ID: "score", GameMode: "duel"}},
	}, leaderboard.Deps{DB: d.Pool, Redis: rd.Client})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cons, err := results.New(results.Config{
		Cells: []string{"eu-west-1"}, XPPerMatch: 10, CurrencyPerMatch: map[string]int64{"gold": 5},
		NakDelay: 20 * time.Millisecond,
		Modes:    map[string]results.ModeRules{"casual": {RewardNoShows: true, RewardUnplayed: true}},
	}, results.Deps{DB: d.Pool, JS: jsG, Leaderboards: lb, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	player := func(name string) string {
		var id string
		if err := d.Pool.QueryRow(ctx, `INSERT INTO players (username) VALUES ($1) RETURNING id::TEXT`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ann, bob, cid, dan := player("ann"), player("bob"), player("cid"), player("dan")
	state := func(p string) ledgerState {
		var s ledgerState
		_ = d.Pool.QueryRow(ctx, `SELECT xp FROM players WHERE id = $1`, p).Scan(&s.xp)
		_ = d.Pool.QueryRow(ctx, `SELECT balance FROM wallet_balances WHERE player_id = $1 AND currency = 'gold'`, p).Scan(&s.gold)
		var n int
		_ = d.Pool.QueryRow(ctx, `SELECT count(*) FROM leaderboard_records WHERE player_id = $1`, p).Scan(&n)
		s.board = fmt.Sprint(n)
		return s
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	outcome := func(o string) float64 {
		return counter(t, reg, "cellgrid_results_messages_total", o)
	}
	refused := func(r string) float64 {
		return counter(t, reg, "cellgrid_results_refused_total", r)
	}
	waitFor := func(what string, f func() float64, want float64) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			if got := f(); got != want {
				return fmt.Errorf("%s = %v, want %v", what, got, want)
			}
			return nil
		})
	}
	played := func(p string) events.PlayerResult {
		return events.PlayerResult{PlayerID: p, Score: 7, Connected: true, InputsAccepted: 100}
	}
	before := state(ann)

	// 1. A forged result for a session no cell started, listing a real
	// player: nothing changes, and it is counted.
	forged := uuid.NewString()
	publish(t, jsEU, events.MatchResult{SessionID: forged, Cell: "eu-west-1", GameMode: "duel", DGSID: "eu-evil",
		Winner: ann, Players: []events.PlayerResult{played(ann)}, Reason: "score_limit"}, forged)
	waitFor("refused unknown_session", func() float64 { return refused(results.RefusedUnknownSession) }, 1)

	// 2. A real session's result published by a DGS that does not hold
	// it: refused; the real server's result then applies (the forged one
	// did not take its place, neither in JetStream's de-duplication nor
	// in applied_events).
	real := uuid.NewString()
	recordSession(t, d.Pool, real, "eu-dgs-real", ann, bob)
	mr := events.MatchResult{SessionID: real, Cell: "eu-west-1", GameMode: "duel", Reason: "score_limit",
		Players: []events.PlayerResult{played(ann), played(bob), played(cid)}} // cid is not in it
	mr.DGSID = "eu-evil"
	publish(t, jsEU, mr, events.ResultMsgID(real, "eu-evil"))
	waitFor("refused wrong_dgs", func() float64 { return refused(results.RefusedWrongDGS) }, 1)
	if got := state(ann); got != before {
		t.Fatalf("ann after forged results: %+v, want %+v", got, before)
	}
	mr.DGSID = "eu-dgs-real"
	publish(t, jsEU, mr, events.ResultMsgID(real, "eu-dgs-real"))
	waitFor("applied", func() float64 { return outcome("applied") }, 1)
	if got := state(ann); got.xp != 10 || got.gold != 5 || got.board != "1" {
		t.Fatalf("ann after the real result: %+v", got)
	}
	if got := state(cid); got.xp != 0 || got.gold != 0 || got.board != "0" {
		t.Fatalf("cid, listed but not in the session, was credited: %+v", got)
	}
	if outcome("foreign_player") != 1 {
		t.Fatalf("foreign_player = %v", outcome("foreign_player"))
	}

	// 3. A player who never connected earns nothing; in a mode whose
	// rules pay no-shows, they do.
	noShow := uuid.NewString()
	recordSession(t, d.Pool, noShow, "eu-dgs-real", cid, dan)
	publish(t, jsEU, events.MatchResult{SessionID: noShow, Cell: "eu-west-1", GameMode: "duel", DGSID: "eu-dgs-real", Reason: "time_limit",
		Players: []events.PlayerResult{played(cid), {PlayerID: dan}}}, noShow)
	waitFor("applied", func() float64 { return outcome("applied") }, 2)
	if state(cid).xp != 10 || state(dan).xp != 0 || state(dan).gold != 0 {
		t.Fatalf("no-show: cid %+v dan %+v", state(cid), state(dan))
	}

	// 4. A match abandoned before anyone connected earns nothing…
	empty := uuid.NewString()
	recordSession(t, d.Pool, empty, "eu-dgs-real", dan)
	publish(t, jsEU, events.MatchResult{SessionID: empty, Cell: "eu-west-1", GameMode: "duel", DGSID: "eu-dgs-real", Reason: "abandoned",
		Players: []events.PlayerResult{{PlayerID: dan}}}, empty)
	waitFor("unplayed", func() float64 { return outcome("unplayed") }, 1)
	if got := state(dan); got.xp != 0 || got.gold != 0 {
		t.Fatalf("dan after an unplayed match: %+v", got)
	}
	// …unless its mode pays for it.
	casual := uuid.NewString()
	recordSession(t, d.Pool, casual, "eu-dgs-real", dan)
	publish(t, jsEU, events.MatchResult{SessionID: casual, Cell: "eu-west-1", GameMode: "casual", DGSID: "eu-dgs-real", Reason: "abandoned",
		Players: []events.PlayerResult{{PlayerID: dan}}}, casual)
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := state(dan); got.xp != 10 || got.gold != 5 {
			return fmt.Errorf("dan in casual: %+v", got)
		}
		return nil
	})
}

// counter reads one labelled counter from reg (0 when absent).
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
