package results_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/global/achievement"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/results"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// cellMatchStream is what the cell creates: its match stream, placed in
// its own cluster.
func cellMatchStream(t *testing.T, js jetstream.JetStream, cell string) {
	t.Helper()
	_, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name: events.MatchStream(cell), Subjects: []string{events.MatchSubjects(cell)},
		Placement: &jetstream.Placement{Cluster: cell}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, js jetstream.JetStream, mr events.MatchResult, msgID string) {
	t.Helper()
	b, _ := json.Marshal(mr)
	m := nats.NewMsg(events.MatchResultSubject(mr.Cell))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func TestScoreFromCellReachesGlobalBoard(t *testing.T) {
	d := testenv.NewDatabase(t) // first: the shared PostgreSQL outlives the test
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global", "eu-west-1", "us-east-1")
	rd := testenv.NewRedis(t)
	ctx := context.Background()

	jsEU, err := jetstream.New(testenv.Connect(t, sc.Server("eu-west-1")))
	if err != nil {
		t.Fatal(err)
	}
	jsUS, _ := jetstream.New(testenv.Connect(t, sc.Server("us-east-1")))
	cellMatchStream(t, jsEU, "eu-west-1")
	cellMatchStream(t, jsUS, "us-east-1")
	jsG, _ := jetstream.New(testenv.Connect(t, sc.Server("global")))

	lb, err := leaderboard.New(leaderboard.Config{
		Boards: []leaderboard.Definition{
			{ID: "duel-high", GameMode: "duel", Scope: leaderboard.ScopeRegional},
			{ID: "wins", Operator: leaderboard.OpIncr, Metric: leaderboard.MetricWins},
		},
		Regions: map[string]string{"eu-west-1": "eu", "us-east-1": "us"},
	}, leaderboard.Deps{DB: d.Pool, Redis: rd.Client})
	if err != nil {
		t.Fatal(err)
	}
	ach, _ := achievement.New(achievement.Config{Achievements: []achievement.Definition{
		{ID: "first-win", Name: "First win", Event: achievement.EventWin, Goal: 1},
	}}, achievement.Deps{DB: d.Pool})
	reg := prometheus.NewRegistry()
	cons, err := results.New(results.Config{
		Cells:      []string{"eu-west-1", "us-east-1"},
		XPPerMatch: 50, XPPerWin: 100, Levels: []int64{100, 200},
		CurrencyPerMatch: map[string]int64{"gold": 5}, CurrencyPerWin: map[string]int64{"gold": 10, "gems": 1},
		FlaggedInputsThreshold: 10,
	}, results.Deps{DB: d.Pool, JS: jsG, Leaderboards: lb, Achievements: ach, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	var ann, bob string
	for _, n := range []string{"ann", "bob"} {
		id := testenv.NewPlayer(t, d.Pool, n)
		if n == "ann" {
			ann = id
		} else {
			bob = id
		}
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

	session := uuid.NewString()
	mr := events.MatchResult{
		SessionID: session, Cell: "eu-west-1", GameMode: "duel", Winner: ann, WinnerTeam: 0,
		EndedAt: time.Now().UTC(), Reason: "score_limit",
		Players: []events.PlayerResult{
			{PlayerID: ann, Team: 0, Score: 42},
			{PlayerID: bob, Team: 1, Score: 17, FlaggedInputs: 11},
			{PlayerID: uuid.NewString(), Team: 1, Score: 99}, // no players row: skipped
		},
	}
	publish(t, jsEU, mr, session)

	// Read through the global API.
	mux := http.NewServeMux()
	lb.Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	read := func(q string) (leaderboard.Page, error) {
		resp, err := http.Get(srv.URL + "/leaderboards/" + q)
		if err != nil {
			return leaderboard.Page{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return leaderboard.Page{}, fmt.Errorf("status %d", resp.StatusCode)
		}
		var p leaderboard.Page
		return p, json.NewDecoder(resp.Body).Decode(&p)
	}
	want := func(q, w string) func() error {
		return func() error {
			p, err := read(q)
			if err != nil {
				return err
			}
			got := ""
			for _, e := range p.Entries {
				got += fmt.Sprintf("%d:%s=%d ", e.Rank, e.Username, e.Score)
			}
			if got != w {
				return fmt.Errorf("%s: %q, want %q", q, got, w)
			}
			return nil
		}
	}
	testenv.Eventually(t, 20*time.Second, want("duel-high", "1:ann=42 2:bob=17 "))
	testenv.Eventually(t, time.Second, want("duel-high?region=eu", "1:ann=42 2:bob=17 "))
	testenv.Eventually(t, time.Second, want("wins", "1:ann=1 2:bob=0 "))

	check := func(stage string) {
		t.Helper()
		var xp int64
		var level int
		if err := d.Pool.QueryRow(ctx, `SELECT xp, level FROM players WHERE id = $1`, ann).Scan(&xp, &level); err != nil || xp != 150 || level != 2 {
			t.Fatalf("%s: ann xp %d level %d %v", stage, xp, level, err)
		}
		var gold, gems, sum int64
		_ = d.Pool.QueryRow(ctx, `SELECT balance FROM wallet_balances WHERE player_id=$1 AND currency='gold'`, ann).Scan(&gold)
		_ = d.Pool.QueryRow(ctx, `SELECT balance FROM wallet_balances WHERE player_id=$1 AND currency='gems'`, ann).Scan(&gems)
		_ = d.Pool.QueryRow(ctx, `SELECT sum(amount) FROM transactions WHERE player_id=$1`, ann).Scan(&sum)
		if gold != 15 || gems != 1 || sum != 16 {
			t.Fatalf("%s: ann gold %d gems %d ledger %d", stage, gold, gems, sum)
		}
		var flags, unlocks int
		_ = d.Pool.QueryRow(ctx, `SELECT count(*) FROM player_flags WHERE player_id=$1 AND rule='flagged_inputs'`, bob).Scan(&flags)
		_ = d.Pool.QueryRow(ctx, `SELECT count(*) FROM achievement_progress WHERE unlocked_at IS NOT NULL`).Scan(&unlocks)
		if flags != 1 || unlocks != 1 {
			t.Fatalf("%s: flags %d unlocks %d", stage, flags, unlocks)
		}
	}
	check("first delivery")

	// The same result again under another message id (so JetStream's
	// de-duplication does not hide it): consumed, nothing applied twice.
	publish(t, jsEU, mr, session+"-again")
	testenv.Eventually(t, 20*time.Second, func() error {
		ci, err := jsG.Consumer(ctx, "MATCH_GLOBAL", "results")
		if err != nil {
			return err
		}
		info, err := ci.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream != 2 {
			return fmt.Errorf("ack floor %d", info.AckFloor.Stream)
		}
		return nil
	})
	check("redelivery")

	// A result from the other cell lands in its region.
	s2 := uuid.NewString()
	publish(t, jsUS, events.MatchResult{SessionID: s2, Cell: "us-east-1", GameMode: "duel", Winner: bob,
		Players: []events.PlayerResult{{PlayerID: bob, Score: 60}}}, s2)
	testenv.Eventually(t, 20*time.Second, want("duel-high", "1:bob=60 2:ann=42 "))
	testenv.Eventually(t, time.Second, want("duel-high?region=us", "1:bob=60 "))
	testenv.Eventually(t, time.Second, want("duel-high?region=eu", "1:ann=42 "))

	// Redis loses everything: the boards come back from the database.
	if err := rd.Client.Do(ctx, rd.Client.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Second, want("duel-high", "1:bob=60 2:ann=42 "))
	first, second := "ann", "bob" // a tie ranks the greater member first (ZRANGE … REV)
	if bob > ann {
		first, second = "bob", "ann"
	}
	testenv.Eventually(t, time.Second, want("wins", "1:"+first+"=1 2:"+second+"=1 "))
}
