package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// fakeClock is a settable clock shared by a Store and a Matchmaker.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is a Handler that records matches and marks them ready.
type recorder struct {
	store *Store
	mu    sync.Mutex
	ms    []Match // guarded by mu
	fail  bool    // guarded by mu
}

func (r *recorder) handle(ctx context.Context, m Match) error {
	r.mu.Lock()
	fail := r.fail
	if !fail {
		r.ms = append(r.ms, m)
	}
	r.mu.Unlock()
	if fail {
		return errors.New("no server")
	}
	return r.store.MarkReady(ctx, m, `{"id":"`+m.SessionID+`"}`, map[string]string{})
}

func (r *recorder) matches() []Match {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Match(nil), r.ms...)
}

type rig struct {
	store *Store
	mm    *Matchmaker
	rec   *recorder
	clock *fakeClock
}

func newRig(t *testing.T, cfg Config, modes ...GameMode) *rig {
	t.Helper()
	rd := testenv.NewRedis(t)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	st, err := NewStore(rd.Client, "test-cell", modes, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{store: st}
	cfg.Now = clock.Now
	mm, err := New(cfg, Deps{Store: st, Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{store: st, mm: mm, rec: rec, clock: clock}
}

func (r *rig) join(t *testing.T, mode string, rating int, players ...string) Ticket {
	t.Helper()
	if len(players) == 0 {
		players = []string{uuid.NewString()}
	}
	tk, err := r.store.Join(context.Background(), JoinRequest{Owner: players[0], Mode: mode, Players: players, Rating: rating})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	return tk
}

// drain runs the workers' handler for matches handed over by Tick (the
// tests call Tick directly instead of Run).
func (r *rig) drain(t *testing.T) {
	t.Helper()
	for {
		select {
		case m := <-r.mm.work:
			if err := r.rec.handle(context.Background(), m); err != nil {
				r.mm.requeue(context.Background(), m)
			}
		default:
			return
		}
	}
}

func TestJoinConflictCancelAndRejoin(t *testing.T) {
	r := newRig(t, Config{}, testMode("duo", 2, 2))
	ctx := context.Background()
	a, b := uuid.NewString(), uuid.NewString()
	tk := r.join(t, "duo", 1000, a, b)
	if _, err := r.store.Join(ctx, JoinRequest{Owner: b, Mode: "duo", Players: []string{b}, Rating: 1000}); !errors.Is(err, ErrActiveTicket) {
		t.Fatalf("second ticket for a party member: %v, want ErrActiveTicket", err)
	}
	if _, err := r.store.Join(ctx, JoinRequest{Owner: a, Mode: "duo", Players: []string{a, b, uuid.NewString()}}); !errors.Is(err, ErrInvalidTicket) {
		t.Fatalf("party of 3 in duo: %v", err)
	}
	if _, err := r.store.Join(ctx, JoinRequest{Owner: a, Mode: "nope", Players: []string{a}}); !errors.Is(err, ErrUnknownMode) {
		t.Fatalf("unknown mode: %v", err)
	}
	if err := r.store.Cancel(ctx, tk); err != nil {
		t.Fatal(err)
	}
	got, err := r.store.Get(ctx, tk.ID)
	if err != nil || got.State != StateCancelled {
		t.Fatalf("after cancel: %+v %v", got, err)
	}
	if err := r.store.Cancel(ctx, tk); !errors.Is(err, ErrNotCancellable) {
		t.Fatalf("cancel twice: %v", err)
	}
	if n, _ := r.store.Queued(ctx, "duo"); n != 0 {
		t.Fatalf("pool holds %d after cancel", n)
	}
	r.join(t, "duo", 1000, b) // b is free again
	if last, err := r.store.LastTicket(ctx, a); err != nil || last != tk.ID {
		t.Fatalf("last ticket of a: %q %v", last, err)
	}
}

func TestPoolFullSheds(t *testing.T) {
	m := testMode("duel", 2, 1)
	m.MaxQueued = 2
	r := newRig(t, Config{}, m)
	r.join(t, "duel", 1000)
	r.join(t, "duel", 1000)
	_, err := r.store.Join(context.Background(), JoinRequest{Owner: "x", Mode: "duel", Players: []string{"x"}, Rating: 1000})
	var full *PoolFullError
	if !errors.As(err, &full) || full.RetryAfter <= 0 {
		t.Fatalf("third join: %v, want PoolFullError", err)
	}
}

func TestTickMatchesAfterWindowWidens(t *testing.T) {
	r := newRig(t, Config{}, testMode("duel", 2, 1))
	ctx := context.Background()
	p := r.mm.Pool("duel")
	lo, hi := r.join(t, "duel", 1000), r.join(t, "duel", 1160)
	st, err := p.Tick(ctx)
	if err != nil || !st.Leader || st.Queued != 2 || st.Matches != 0 {
		t.Fatalf("first tick: %+v %v", st, err)
	}
	r.clock.Advance(15 * time.Second) // ±125: still apart
	if st, err = p.Tick(ctx); err != nil || st.Matches != 0 {
		t.Fatalf("after 15s: %+v %v", st, err)
	}
	r.clock.Advance(10 * time.Second) // ±175
	if st, err = p.Tick(ctx); err != nil || st.Matches != 1 {
		t.Fatalf("after 25s: %+v %v", st, err)
	}
	r.drain(t)
	for _, id := range []string{lo.ID, hi.ID} {
		tk, err := r.store.Get(ctx, id)
		if err != nil || tk.State != StateReady || tk.SessionID == "" {
			t.Fatalf("ticket after match: %+v %v", tk, err)
		}
	}
	if n, _ := r.store.Queued(ctx, "duel"); n != 0 {
		t.Fatalf("pool holds %d", n)
	}
}

func TestFailedAllocationRequeues(t *testing.T) {
	r := newRig(t, Config{}, testMode("duel", 2, 1))
	ctx := context.Background()
	p := r.mm.Pool("duel")
	a, b := r.join(t, "duel", 1000), r.join(t, "duel", 1000)
	r.rec.fail = true
	if st, _ := p.Tick(ctx); st.Matches != 1 {
		t.Fatalf("tick: %+v", st)
	}
	r.drain(t)
	for _, id := range []string{a.ID, b.ID} {
		if tk, _ := r.store.Get(ctx, id); tk.State != StateQueued {
			t.Fatalf("after failed allocation: %s", tk.State)
		}
	}
	r.rec.fail = false
	if st, _ := p.Tick(ctx); st.Matches != 1 {
		t.Fatalf("tick after requeue: %+v", st)
	}
	r.drain(t)
	if tk, _ := r.store.Get(ctx, a.ID); tk.State != StateReady {
		t.Fatalf("after retry: %s", tk.State)
	}
}

func TestTicketsExpire(t *testing.T) {
	m := testMode("duel", 2, 1)
	m.TicketTTL = time.Minute
	r := newRig(t, Config{}, m)
	ctx := context.Background()
	player := uuid.NewString()
	tk := r.join(t, "duel", 1000, player)
	r.clock.Advance(61 * time.Second)
	if got, _ := r.store.Get(ctx, tk.ID); got.State != StateExpired {
		t.Fatalf("read of an old ticket: %s", got.State)
	}
	st, err := r.mm.Pool("duel").Tick(ctx)
	if err != nil || st.Expired != 1 {
		t.Fatalf("tick: %+v %v", st, err)
	}
	if n, _ := r.store.Queued(ctx, "duel"); n != 0 {
		t.Fatalf("pool holds %d", n)
	}
	r.join(t, "duel", 1000, player) // free to join again
}

func TestSecondMatchmakerTakesOverLease(t *testing.T) {
	// A lease far longer than the test: nothing lapses on its own while a
	// slow machine runs the ticks below (a 300 ms lease did, at random).
	r := newRig(t, Config{LeaseTTL: time.Hour}, testMode("duel", 2, 1))
	ctx := context.Background()
	other, err := New(Config{LeaseTTL: time.Hour, Now: r.clock.Now}, Deps{Store: r.store, Handler: r.rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := r.mm.Pool("duel").Tick(ctx); !st.Leader {
		t.Fatal("first matchmaker did not take the lease")
	}
	if st, _ := other.Pool("duel").Tick(ctx); st.Leader {
		t.Fatal("two leaders")
	}
	if st, _ := r.mm.Pool("duel").Tick(ctx); !st.Leader {
		t.Fatal("the leader lost its lease while renewing it")
	}
	// The first one stops renewing (crashed) and its lease runs out: Redis
	// expires it, here at once (TestDeadLeaderLosesLeaseOtherTakesOver lets
	// a real TTL lapse).
	if err := r.store.c.Do(ctx, r.store.c.B().Pexpire().Key(r.store.Key("lease", "duel")).Milliseconds(1).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, _ := other.Pool("duel").Tick(ctx); !st.Leader {
			return errors.New("not leader yet")
		}
		return nil
	})
	if st, _ := r.mm.Pool("duel").Tick(ctx); st.Leader {
		t.Fatal("old leader still believes it leads")
	}
	r.join(t, "duel", 1000)
	r.join(t, "duel", 1000)
	if st, _ := other.Pool("duel").Tick(ctx); st.Matches != 1 {
		t.Fatalf("new leader: %+v", st)
	}
}

// TestConcurrentJoinsNeverDoubleMatch runs two matchmakers (two cell
// processes) against 1,000 joins from 8 goroutines.
func TestConcurrentJoinsNeverDoubleMatch(t *testing.T) {
	testenv.CheckGoroutines(t)
	mode := testMode("duel", 2, 1)
	r := newRig(t, Config{TickInterval: 5 * time.Millisecond, LeaseTTL: 200 * time.Millisecond}, mode)
	other, err := New(Config{TickInterval: 5 * time.Millisecond, LeaseTTL: 200 * time.Millisecond, Now: r.clock.Now}, Deps{Store: r.store, Handler: r.rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range []*Matchmaker{r.mm, other} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Run(ctx) }()
	}
	const n, workers = 1000, 8
	var jw sync.WaitGroup
	errs := make(chan error, n)
	for w := range workers {
		jw.Add(1)
		go func() {
			defer jw.Done()
			for i := w; i < n; i += workers {
				p := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
				if _, err := r.store.Join(ctx, JoinRequest{Owner: p, Mode: "duel", Players: []string{p}, Rating: 1000 + i%40}); err != nil {
					errs <- err
				}
			}
		}()
	}
	jw.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if got := len(r.rec.matches()); got != n/2 {
			return fmt.Errorf("%d matches", got)
		}
		return nil
	})
	cancel()
	wg.Wait()
	seen := map[string]string{}
	for _, m := range r.rec.matches() {
		for _, p := range m.Players() {
			if s, dup := seen[p]; dup {
				t.Fatalf("player %s in sessions %s and %s", p, s, m.SessionID)
			}
			seen[p] = m.SessionID
		}
	}
	if len(seen) != n {
		t.Fatalf("%d players matched, want %d", len(seen), n)
	}
}
