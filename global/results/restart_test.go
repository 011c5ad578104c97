package results_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/results"
	"github.com/cellgrid/cellgrid/internal/redisclient"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// breaker is a TCP proxy to Redis that can stop serving: while down it
// drops every connection, so Redis commands fail as in an outage.
type breaker struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool                  // guarded by mu
	conns  map[net.Conn]struct{} // guarded by mu
	wg     sync.WaitGroup
	closed bool // guarded by mu
}

func newBreaker(t *testing.T, target string) *breaker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &breaker{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.setDown(true)
		b.wg.Wait()
	})
	return b
}

func (b *breaker) addr() string { return b.ln.Addr().String() }

func (b *breaker) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.down || b.closed {
			b.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", b.target)
		if err != nil {
			b.mu.Unlock()
			c.Close()
			continue
		}
		b.conns[c], b.conns[up] = struct{}{}, struct{}{}
		b.wg.Add(2)
		b.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer b.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// setDown makes the proxy refuse service (closing live connections) or
// serve again.
func (b *breaker) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
	if down {
		for c := range b.conns {
			c.Close()
		}
		clear(b.conns)
	}
}

// TestResultSurvivesConsumerRestartBeforeAck: the first delivery commits
// to the database but cannot publish to Redis, and its consumer stops
// before acking. The next consumer instance gets the message again: it
// must not apply it a second time, and must republish the boards from the
// database (the Redis side of the first delivery never happened).
func TestResultSurvivesConsumerRestartBeforeAck(t *testing.T) {
	d := testenv.NewDatabase(t)
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global", "eu-west-1")
	rd := testenv.NewRedis(t)
	ctx := context.Background()
	jsEU, err := jetstream.New(testenv.Connect(t, sc.Server("eu-west-1")))
	if err != nil {
		t.Fatal(err)
	}
	cellMatchStream(t, jsEU, "eu-west-1")
	jsG, err := jetstream.New(testenv.Connect(t, sc.Server("global")))
	if err != nil {
		t.Fatal(err)
	}

	brk := newBreaker(t, rd.Addr)
	viaBreaker, err := redisclient.New(redisclient.Config{Addr: brk.addr(), DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer viaBreaker.Close()
	lb, err := leaderboard.New(leaderboard.Config{Boards: []leaderboard.Definition{{ID: "duel-high", GameMode: "duel"}}},
		leaderboard.Deps{DB: d.Pool, Redis: viaBreaker})
	if err != nil {
		t.Fatal(err)
	}
	cfg := results.Config{Cells: []string{"eu-west-1"}, XPPerMatch: 50, XPPerWin: 100,
		CurrencyPerMatch: map[string]int64{"gold": 5}, NakDelay: 200 * time.Millisecond}

	// start runs one consumer instance; stop cancels it and waits.
	start := func() (reg *prometheus.Registry, stop func()) {
		reg = prometheus.NewRegistry()
		cons, err := results.New(cfg, results.Deps{DB: d.Pool, JS: jsG, Leaderboards: lb, Metrics: reg})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cons.Run(runCtx) }()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return reg, stop
	}
	outcome := func(reg *prometheus.Registry, o string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if mf.GetName() == "cellgrid_results_messages_total" && l.GetValue() == o {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}

	var ann string
	if err := d.Pool.QueryRow(ctx, `INSERT INTO players (username) VALUES ('ann') RETURNING id::TEXT`).Scan(&ann); err != nil {
		t.Fatal(err)
	}
	session := uuid.NewString()
	mr := events.MatchResult{SessionID: session, Cell: "eu-west-1", GameMode: "duel", Winner: ann,
		Players: []events.PlayerResult{{PlayerID: ann, Score: 42}}}

	brk.setDown(true)
	regA, stopA := start()
	publish(t, jsEU, mr, session)
	// The first delivery commits, fails to publish to Redis, and is nak'd.
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := outcome(regA, "retry"); n < 1 {
			return fmt.Errorf("%v retries", n)
		}
		return nil
	})
	stopA() // gone before any ack

	zscore := func() (int64, error) {
		return rd.Client.Do(ctx, rd.Client.B().Zscore().Key("lb:duel-high:s0").Member(ann).Build()).AsInt64()
	}
	if _, err := zscore(); !rueidis.IsRedisNil(err) {
		t.Fatalf("board member before any publish reached Redis: %v", err)
	}
	checkDB := func(stage string) {
		t.Helper()
		var xp, gold, rows, applied int64
		if err := d.Pool.QueryRow(ctx, `SELECT xp FROM players WHERE id = $1`, ann).Scan(&xp); err != nil {
			t.Fatal(err)
		}
		if err := d.Pool.QueryRow(ctx, `SELECT COALESCE(sum(amount), 0), count(*) FROM transactions WHERE player_id = $1`, ann).Scan(&gold, &rows); err != nil {
			t.Fatal(err)
		}
		if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM applied_events WHERE event_id = $1`, session).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if xp != 150 || gold != 5 || rows != 1 || applied != 1 {
			t.Fatalf("%s: xp %d (want 150), gold %d in %d ledger rows (want 5 in 1), applied %d times", stage, xp, gold, rows, applied)
		}
	}
	checkDB("after the first delivery")

	brk.setDown(false)
	regB, _ := start()
	testenv.Eventually(t, 20*time.Second, func() error {
		ci, err := jsG.Consumer(ctx, "MATCH_GLOBAL", "results")
		if err != nil {
			return err
		}
		info, err := ci.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream != 1 || info.NumAckPending != 0 {
			return fmt.Errorf("ack floor %d, %d pending", info.AckFloor.Stream, info.NumAckPending)
		}
		return nil
	})
	checkDB("after the restart")
	if a, dup := outcome(regB, "applied"), outcome(regB, "duplicate"); a != 0 || dup != 1 {
		t.Fatalf("second consumer: applied %v, duplicate %v; want 0 and 1", a, dup)
	}
	// The republish path put the committed record into Redis.
	score, err := zscore()
	if err != nil || score != 42 {
		t.Fatalf("board after the redelivery: %d, %v; want 42 republished from the database", score, err)
	}
}
