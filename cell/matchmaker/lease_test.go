package matchmaker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/internal/redisclient"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// process is one cell process's matchmaking: its own Redis connection,
// Store and Matchmaker, and the matches its handler saw.
type process struct {
	client rueidis.Client
	store  *Store
	mm     *Matchmaker
	rec    *recorder
}

func newProcess(t *testing.T, addr string, cfg Config, mode GameMode) *process {
	t.Helper()
	c, err := redisclient.New(redisclient.Config{Addr: addr, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeClient := func() { once.Do(c.Close) }
	t.Cleanup(closeClient)
	st, err := NewStore(c, "test-cell", []GameMode{mode}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{store: st}
	mm, err := New(cfg, Deps{Store: st, Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	return &process{client: c, store: st, mm: mm, rec: rec}
}

// run runs the matchmaker until the returned stop is called.
func (p *process) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.mm.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func joinPlayers(t *testing.T, st *Store, n int) []string {
	t.Helper()
	var ps []string
	for range n {
		p := uuid.NewString()
		if _, err := st.Join(context.Background(), JoinRequest{Owner: p, Mode: "duel", Players: []string{p}, Rating: 1000}); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// checkOnce fails if a player is in two matches, and returns the set.
func checkOnce(t *testing.T, recs ...*recorder) map[string]string {
	t.Helper()
	seen := map[string]string{}
	for _, r := range recs {
		for _, m := range r.matches() {
			for _, p := range m.Players() {
				if s, dup := seen[p]; dup {
					t.Fatalf("player %s matched twice: sessions %s and %s", p, s, m.SessionID)
				}
				seen[p] = m.SessionID
			}
		}
	}
	return seen
}

// Two processes, each with its own connection, claim overlapping proposals
// at the same moment: every ticket goes to at most one session.
func TestClaimRaceAcrossConnections(t *testing.T) {
	rd := testenv.NewRedis(t)
	mode := testMode("duel", 2, 1)
	a := newProcess(t, rd.Addr, Config{}, mode)
	b := newProcess(t, rd.Addr, Config{}, mode)
	ctx := context.Background()
	const n = 200
	joinPlayers(t, a.store, n)
	entries, _, err := a.store.readPool(ctx, "duel", -1, n)
	if err != nil || len(entries) != n {
		t.Fatalf("pool: %d entries, %v", len(entries), err)
	}
	// a proposes (0,1), (2,3)…; b proposes (1,2), (3,4)… and (0,1) again.
	type claim struct {
		st      *Store
		entries []Entry
	}
	var claims []claim
	for i := 0; i+1 < n; i += 2 {
		claims = append(claims, claim{a.store, []Entry{entries[i], entries[i+1]}})
		if i+2 < n {
			claims = append(claims, claim{b.store, []Entry{entries[i+1], entries[i+2]}})
		}
		claims = append(claims, claim{b.store, []Entry{entries[i], entries[i+1]}})
	}
	type won struct {
		session string
		players [][]string
	}
	results := make([]*won, len(claims))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range claims {
		wg.Go(func() {
			<-start
			sid := uuid.NewString()
			players, stale, err := c.st.Claim(ctx, "duel", sid, c.entries)
			if err != nil {
				t.Error(err)
				return
			}
			if stale < 0 {
				results[i] = &won{sid, players}
			}
		})
	}
	close(start)
	wg.Wait()
	owner := map[string]string{}
	for i, w := range results {
		if w == nil {
			continue
		}
		for j, e := range claims[i].entries {
			if s, dup := owner[e.TicketID]; dup {
				t.Fatalf("ticket %s claimed by sessions %s and %s", e.TicketID, s, w.session)
			}
			owner[e.TicketID] = w.session
			if len(w.players[j]) != 1 {
				t.Fatalf("claim returned players %v", w.players)
			}
		}
	}
	if len(owner) == 0 {
		t.Fatal("nothing was claimed")
	}
	// Every claimed ticket records its one session; the rest are still
	// claimable (not lost).
	for _, e := range entries {
		tk, err := a.store.Get(ctx, e.TicketID)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := owner[e.TicketID]; ok != (tk.State == StateMatched) || (ok && tk.SessionID != s) {
			t.Fatalf("ticket %s: state %s session %s, claimed by %q", e.TicketID, tk.State, tk.SessionID, s)
		}
	}
}

// A leader whose process dies (its connection gone, no release) keeps the
// lease only until it lapses; the other process then takes over and
// matches every ticket, none twice.
func TestDeadLeaderLosesLeaseOtherTakesOver(t *testing.T) {
	rd := testenv.NewRedis(t)
	mode := testMode("duel", 2, 1)
	cfg := Config{TickInterval: 10 * time.Millisecond, LeaseTTL: time.Second}
	a := newProcess(t, rd.Addr, cfg, mode)
	b := newProcess(t, rd.Addr, cfg, mode)
	ctx := context.Background()
	leaseKey := a.store.Key("lease", "duel")
	owner := func() string {
		v, err := rd.Client.Do(ctx, rd.Client.B().Get().Key(leaseKey).Build()).ToString()
		if rueidis.IsRedisNil(err) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	a.run(t)
	testenv.Eventually(t, 10*time.Second, func() error {
		if o := owner(); o != a.mm.cfg.Owner {
			return fmt.Errorf("lease owner %q", o)
		}
		return nil
	})
	b.run(t)
	first := joinPlayers(t, b.store, 40)
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := len(checkOnce(t, a.rec, b.rec)); n != len(first) {
			return fmt.Errorf("%d of %d matched", n, len(first))
		}
		return nil
	})

	// The leader's process dies: its connection drops, nothing releases
	// the lease.
	a.client.Close()
	testenv.Eventually(t, 20*time.Second, func() error {
		if o := owner(); o != b.mm.cfg.Owner {
			return fmt.Errorf("lease owner %q", o)
		}
		return nil
	})
	second := joinPlayers(t, b.store, 40)
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := len(checkOnce(t, a.rec, b.rec)); n != len(first)+len(second) {
			return fmt.Errorf("%d of %d matched", n, len(first)+len(second))
		}
		return nil
	})
	for _, m := range a.rec.matches() {
		for _, p := range m.Players() {
			for _, q := range second {
				if p == q {
					t.Fatalf("the dead leader matched %s", p)
				}
			}
		}
	}
}
