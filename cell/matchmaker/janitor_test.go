package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestJanitorRequeuesTicketsOfADeadMatchmaker claims a match, then lets
// the matchmaker "crash" (its handler never runs, its lease is never
// released); the janitor puts the tickets back in the queue with a
// reason, and a fresh matchmaker matches them.
func TestJanitorRequeuesTicketsOfADeadMatchmaker(t *testing.T) {
	r := newRig(t, Config{LeaseTTL: 300 * time.Millisecond}, testMode("duel", 2, 1))
	ctx := context.Background()
	a, b := r.join(t, "duel", 1000), r.join(t, "duel", 1000)
	if st, err := r.mm.Pool("duel").Tick(ctx); err != nil || st.Matches != 1 {
		t.Fatalf("tick: %+v %v", st, err)
	}
	// The crash: the claimed match sits in the dead process's memory.
	<-r.mm.work
	for _, id := range []string{a.ID, b.ID} {
		if tk, _ := r.store.Get(ctx, id); tk.State != StateMatched {
			t.Fatalf("after claim: %s", tk.State)
		}
	}

	jcfg := JanitorConfig{Deadline: 30 * time.Second, Interval: 10 * time.Millisecond}
	j, err := NewJanitor(jcfg, JanitorDeps{Store: r.store})
	if err != nil {
		t.Fatal(err)
	}
	// Within the deadline the janitor leaves a live allocation alone.
	if n, err := j.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before the deadline: %d %v", n, err)
	}
	jctx, jcancel := context.WithCancel(ctx)
	jdone := make(chan error, 1)
	go func() { jdone <- j.Run(jctx) }()
	defer func() { jcancel(); <-jdone }()
	r.clock.Advance(jcfg.Deadline + time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, id := range []string{a.ID, b.ID} {
			tk, err := r.store.Get(ctx, id)
			if err != nil {
				return err
			}
			if tk.State != StateQueued || tk.RequeueReason != RequeueAbandoned || tk.SessionID != "" {
				return fmt.Errorf("ticket %s: state %s reason %q", id, tk.State, tk.RequeueReason)
			}
		}
		return nil
	})
	if n, _ := r.store.Queued(ctx, "duel"); n != 2 {
		t.Fatalf("pool holds %d after the janitor, want 2", n)
	}

	// A fresh matchmaker (once the dead one's lease lapsed) matches them.
	rec := &recorder{store: r.store}
	mm2, err := New(Config{LeaseTTL: 300 * time.Millisecond, TickInterval: 20 * time.Millisecond, Now: r.clock.Now}, Deps{Store: r.store, Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan error, 1)
	go func() { mdone <- mm2.Run(mctx) }()
	defer func() { mcancel(); <-mdone }()
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, id := range []string{a.ID, b.ID} {
			tk, err := r.store.Get(ctx, id)
			if err != nil {
				return err
			}
			if tk.State != StateReady {
				return fmt.Errorf("ticket %s: %s", id, tk.State)
			}
		}
		return nil
	})
	// A ready ticket is out of the janitor's index: nothing to sweep.
	r.clock.Advance(time.Hour)
	if n, err := j.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep after ready: %d %v", n, err)
	}
}

// TestMarkReadyRefusesLostClaim: once the janitor requeued a match's
// tickets, the late handler's MarkReady must fail (so the cell gives the
// server back) and must not mark any of them ready.
func TestMarkReadyRefusesLostClaim(t *testing.T) {
	r := newRig(t, Config{}, testMode("duel", 2, 1))
	ctx := context.Background()
	a, b := r.join(t, "duel", 1000), r.join(t, "duel", 1000)
	if st, err := r.mm.Pool("duel").Tick(ctx); err != nil || st.Matches != 1 {
		t.Fatalf("tick: %+v %v", st, err)
	}
	m := <-r.mm.work
	j, _ := NewJanitor(JanitorConfig{Deadline: time.Second}, JanitorDeps{Store: r.store})
	r.clock.Advance(2 * time.Second)
	if n, err := j.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	err := r.store.MarkReady(ctx, m, `{}`, map[string]string{})
	if !errors.Is(err, ErrClaimLost) {
		t.Fatalf("MarkReady after the janitor requeued the match: %v, want ErrClaimLost", err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if tk, _ := r.store.Get(ctx, id); tk.State != StateQueued {
			t.Fatalf("ticket %s after a refused MarkReady: %s", id, tk.State)
		}
	}
}
