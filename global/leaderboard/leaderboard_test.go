package leaderboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type env struct {
	lb    *leaderboard.Leaderboards
	pool  *pgxpool.Pool
	redis *testenv.Redis
	clk   *clock
}

func newEnv(t *testing.T) *env {
	d := testenv.NewDatabase(t)
	r := testenv.NewRedis(t)
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	lb, err := leaderboard.New(leaderboard.Config{
		Boards: []leaderboard.Definition{
			{ID: "high", Scope: leaderboard.ScopeRegional},
			{ID: "laps", Order: leaderboard.OrderAsc},
			{ID: "wins", Operator: leaderboard.OpIncr, Metric: leaderboard.MetricWins, ResetSchedule: "0 0 * * 1"},
			{ID: "last", Operator: leaderboard.OpSet},
		},
		Now:       clk.Now,
		SeasonTTL: time.Nanosecond,
	}, leaderboard.Deps{DB: d.Pool, Redis: r.Client})
	if err != nil {
		t.Fatal(err)
	}
	return &env{lb: lb, pool: d.Pool, redis: r, clk: clk}
}

func (e *env) player(t *testing.T, name string) string {
	t.Helper()
	return testenv.NewPlayer(t, e.pool, name)
}

func (e *env) submit(t *testing.T, scores ...leaderboard.Score) {
	t.Helper()
	var recs []leaderboard.Record
	err := db.RunTx(context.Background(), e.pool, func(ctx context.Context, tx pgx.Tx) error {
		recs = recs[:0]
		for _, s := range scores {
			r, err := e.lb.Submit(ctx, tx, s)
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.lb.Publish(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func scores(p leaderboard.Page) string {
	s := ""
	for _, e := range p.Entries {
		s += fmt.Sprintf("%d:%s=%d ", e.Rank, e.Username, e.Score)
	}
	return s
}

func TestOperatorsOrderAndRebuild(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b, c := e.player(t, "ann"), e.player(t, "bob"), e.player(t, "cat")
	e.submit(t,
		leaderboard.Score{Board: "high", PlayerID: a, Region: "eu", Value: 10},
		leaderboard.Score{Board: "high", PlayerID: b, Region: "us", Value: 30},
		leaderboard.Score{Board: "laps", PlayerID: a, Value: 70},
		leaderboard.Score{Board: "laps", PlayerID: b, Value: 50},
		leaderboard.Score{Board: "wins", PlayerID: a, Value: 1},
		leaderboard.Score{Board: "last", PlayerID: a, Value: 100},
	)
	e.submit(t,
		leaderboard.Score{Board: "high", PlayerID: a, Region: "eu", Value: 5}, // best keeps 10
		leaderboard.Score{Board: "high", PlayerID: c, Region: "eu", Value: 20},
		leaderboard.Score{Board: "laps", PlayerID: a, Value: 40}, // best asc: 40
		leaderboard.Score{Board: "wins", PlayerID: a, Value: 1},
		leaderboard.Score{Board: "last", PlayerID: a, Value: 3},
	)
	want := map[string]string{
		"high": "1:bob=30 2:cat=20 3:ann=10 ",
		"laps": "1:ann=40 2:bob=50 ",
		"wins": "1:ann=2 ",
		"last": "1:ann=3 ",
	}
	check := func(stage string) {
		t.Helper()
		for board, w := range want {
			p, err := e.lb.Read(ctx, leaderboard.Query{Board: board})
			if err != nil || scores(p) != w {
				t.Fatalf("%s %s: %q %v, want %q", stage, board, scores(p), err, w)
			}
		}
		p, err := e.lb.Read(ctx, leaderboard.Query{Board: "high", Region: "eu"})
		if err != nil || scores(p) != "1:cat=20 2:ann=10 " {
			t.Fatalf("%s eu: %q %v", stage, scores(p), err)
		}
	}
	check("live")
	if err := e.redis.Client.Do(ctx, e.redis.Client.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	check("after FLUSHALL")

	// Moving region moves the player between regional boards.
	e.submit(t, leaderboard.Score{Board: "high", PlayerID: a, Region: "us", Value: 1})
	if p, _ := e.lb.Read(ctx, leaderboard.Query{Board: "high", Region: "eu"}); scores(p) != "1:cat=20 " {
		t.Fatalf("eu after move: %q", scores(p))
	}
	if p, _ := e.lb.Read(ctx, leaderboard.Query{Board: "high", Region: "us"}); scores(p) != "1:bob=30 2:ann=10 " {
		t.Fatalf("us after move: %q", scores(p))
	}
	if _, err := e.lb.Read(ctx, leaderboard.Query{Board: "laps", Region: "eu"}); !errors.Is(err, leaderboard.ErrBadRegion) {
		t.Fatalf("region on a global board: %v", err)
	}
	if _, err := e.lb.Read(ctx, leaderboard.Query{Board: "nope"}); !errors.Is(err, leaderboard.ErrUnknownBoard) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestPagingAroundAndHTTP(t *testing.T) {
	e := newEnv(t)
	var ids []string
	var batch []leaderboard.Score
	for i := range 25 {
		id := e.player(t, fmt.Sprintf("p%02d", i))
		ids = append(ids, id)
		batch = append(batch, leaderboard.Score{Board: "high", PlayerID: id, Region: "eu", Value: int64(i * 10)})
	}
	e.submit(t, batch...)
	mux := http.NewServeMux()
	me := ids[3] // score 30, rank 22 of 25
	e.lb.Register(mux, testenv.AuthAs(me))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(q string) (int, leaderboard.Page) {
		resp, err := http.Get(srv.URL + "/leaderboards/" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p leaderboard.Page
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p
	}
	var all []leaderboard.Entry
	cursor := ""
	for pages := 0; ; pages++ {
		code, p := get("high?limit=10&cursor=" + cursor)
		if code != 200 || pages > 3 {
			t.Fatalf("page %d: %d", pages, code)
		}
		all = append(all, p.Entries...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(all) != 25 || all[0].Score != 240 || all[24].Score != 0 || all[24].Rank != 25 || all[0].Username != "p24" {
		t.Fatalf("paged: %d entries %+v … %+v", len(all), all[0], all[len(all)-1])
	}
	code, p := get("high?around=me&limit=5")
	if code != 200 || len(p.Entries) != 5 || p.Entries[2].PlayerID != me || p.Entries[2].Rank != 22 {
		t.Fatalf("around me: %d %+v", code, p.Entries)
	}
	code, p = get("high?around=" + ids[24] + "&limit=5")
	if code != 200 || p.Entries[0].Rank != 1 || p.Entries[0].PlayerID != ids[24] {
		t.Fatalf("around top: %d %+v", code, p.Entries)
	}
	if code, _ = get("laps?around=me"); code != 404 {
		t.Fatalf("not ranked: %d", code)
	}
	for _, q := range []string{"high?limit=0", "high?limit=101", "high?cursor=zzz", "high?season=-1", "nope", "laps?region=eu"} {
		if code, _ := get(q); code != 400 && code != 404 {
			t.Fatalf("%s: %d", q, code)
		}
	}
}

func TestSeasonReset(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	testenv.CheckGoroutines(t)
	// Run initialises next_reset_at from the schedule (next Monday 00:00) and
	// stops on cancel.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.lb.Run(rctx) }()
	testenv.Eventually(t, 5*time.Second, func() error {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM leaderboard_seasons WHERE leaderboard_id='wins' AND next_reset_at IS NOT NULL`).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("season rows %d %v", n, err)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a := e.player(t, "ann")
	e.submit(t, leaderboard.Score{Board: "wins", PlayerID: a, Value: 3})
	if got, _ := e.lb.ResetDue(ctx); len(got) != 0 {
		t.Fatalf("reset before due: %v", got)
	}
	e.clk.Set(time.Date(2026, 11, 30, 0, 0, 1, 0, time.UTC)) // Monday
	got, err := e.lb.ResetDue(ctx)
	if err != nil || len(got) != 1 || got[0] != "wins" {
		t.Fatalf("reset: %v %v", got, err)
	}
	if got, _ := e.lb.ResetDue(ctx); len(got) != 0 {
		t.Fatalf("reset twice: %v", got)
	}
	e.submit(t, leaderboard.Score{Board: "wins", PlayerID: a, Value: 1})
	p, err := e.lb.Read(ctx, leaderboard.Query{Board: "wins"})
	if err != nil || p.Season != 1 || scores(p) != "1:ann=1 " {
		t.Fatalf("new season: %+v %v", p, err)
	}
	zero := 0
	p, err = e.lb.Read(ctx, leaderboard.Query{Board: "wins", Season: &zero})
	if err != nil || scores(p) != "1:ann=3 " {
		t.Fatalf("archived season: %+v %v", p, err)
	}
}
