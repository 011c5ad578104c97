package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/dgs/sdk"
	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestLateAcceptingDGSYieldsOneResult: the first server picked accepts the
// allocation after the fleet's timeout. The fleet gives the session to
// another server; the late one must not keep it, and its (abandoned)
// result must not be published: exactly one result, the real one.
func TestLateAcceptingDGSYieldsOneResult(t *testing.T) {
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, cellID)
	srv := sc.Server(cellID)
	cellNC := testenv.ConnectAs(t, sc, srv, natsauth.Cell(cellID))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cjs, _ := jetstream.New(cellNC)
	if err := events.EnsureMatchStream(ctx, cjs, cellID, time.Hour); err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Cell: cellID, AllocateTimeout: 300 * time.Millisecond, HealthTimeout: 5 * time.Second,
		AutoscaleInterval: 50 * time.Millisecond}, Deps{NATS: cellNC})
	if err != nil {
		t.Fatal(err)
	}
	fctx, fstop := context.WithCancel(context.Background())
	fdone := make(chan error, 1)
	go func() { fdone <- f.Run(fctx) }()
	defer func() { fstop(); <-fdone }()

	// Two in-process game servers, each on its own DGS credential. "a-slow"
	// sorts first, so the fleet tries it first.
	type game struct {
		kit     *sdk.SDK
		reports chan error
	}
	var wg sync.WaitGroup
	sctx, sstop := context.WithCancel(context.Background())
	defer func() { sstop(); wg.Wait() }()
	start := func(id string, acceptAfter time.Duration) *game {
		nc := testenv.ConnectAs(t, sc, srv, natsauth.DGS(cellID, id))
		kit, err := sdk.New(sdk.Config{Cell: cellID, ID: id, Version: "v1", GameAddr: "127.0.0.1:7000", NATS: nc, HealthInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		g := &game{kit: kit, reports: make(chan error, 4)}
		// The "match" ends at once once accepted (or cancelled), and the
		// game reports its result, as the arena does.
		end := func(a events.Allocation, reason string) {
			r := events.MatchResult{SessionID: a.SessionID, GameMode: a.GameMode, Reason: reason, WinnerTeam: -1}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rctx, rcancel := context.WithTimeout(sctx, 20*time.Second)
				defer rcancel()
				g.reports <- kit.ReportResult(rctx, r)
			}()
		}
		kit.HandleAllocate(func(a events.Allocation) error {
			time.Sleep(acceptAfter)
			if acceptAfter == 0 {
				end(a, "score_limit")
			}
			return nil
		})
		kit.HandleCancel(func(a events.Allocation) { end(a, "abandoned") })
		wg.Add(1)
		go func() { defer wg.Done(); _ = kit.Run(sctx) }()
		if err := kit.Ready(); err != nil {
			t.Fatal(err)
		}
		return g
	}
	slow := start("a-slow", time.Second)
	fast := start("b-fast", 0)
	testenv.Eventually(t, 20*time.Second, func() error {
		ready := 0
		for _, s := range f.Servers() {
			if s.State == events.DGSReady {
				ready++
			}
		}
		if ready != 2 {
			return errors.New("servers not ready yet")
		}
		return nil
	})

	session := uuid.NewString()
	got, err := f.Allocate(ctx, events.Allocation{SessionID: session, GameMode: "duel", Players: []string{uuid.NewString()}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ServerID != "b-fast" {
		t.Fatalf("session went to %s, want b-fast", got.ServerID)
	}
	report := func(g *game) error {
		select {
		case err := <-g.reports:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("no report within 30s")
		}
	}
	if err := report(fast); err != nil {
		t.Fatalf("real result: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if st, sess := slow.kit.State(); st == events.DGSAllocated {
			return errors.New("late server still holds session " + sess)
		}
		return nil
	})
	if err := report(slow); !errors.Is(err, sdk.ErrAllocationCancelled) {
		t.Fatalf("late server's result: %v, want ErrAllocationCancelled", err)
	}

	// The stream holds exactly one result for the session: the real one.
	st, err := cjs.Stream(ctx, events.MatchStream(cellID))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.MatchResultFilter(cellID)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{events.MatchResultSubject(cellID, "b-fast"): 1}
	if len(info.State.Subjects) != 1 || info.State.Subjects[events.MatchResultSubject(cellID, "b-fast")] != 1 {
		t.Fatalf("results on the stream: %v, want %v", info.State.Subjects, want)
	}
	m, err := st.GetLastMsgForSubject(ctx, events.MatchResultFilter(cellID))
	if err != nil {
		t.Fatal(err)
	}
	var r events.MatchResult
	if err := json.Unmarshal(m.Data, &r); err != nil || r.SessionID != session || r.Reason != "score_limit" {
		t.Fatalf("stored result %+v (%v)", r, err)
	}
}

// TestServerRetiredBeforeItsCredentialExpires: a Ready server is replaced
// once its NATS credential has less than a tenth of its life left.
func TestServerRetiredBeforeItsCredentialExpires(t *testing.T) {
	r := startFleet(t, Config{Min: 1, Buffer: 1, Max: 3, CredentialTTL: 5 * time.Second})
	var first string
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, s := range r.f.Servers() {
			if s.State == events.DGSReady {
				first = s.ID
				return nil
			}
		}
		return errors.New("no ready server yet")
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, s := range r.f.Servers() {
			if s.ID == first {
				return errors.New("first server still in the pool (state " + string(s.State) + ")")
			}
		}
		for _, s := range r.f.Servers() {
			if s.State == events.DGSReady {
				return nil
			}
		}
		return errors.New("no replacement ready")
	})
	// Retired in time (shut down by the fleet), not dropped by NATS when
	// the credential expired (which shows as unhealthy).
	if !r.tr.saw(first, events.DGSShutdown) || r.tr.saw(first, events.DGSUnhealthy) {
		r.tr.mu.Lock()
		defer r.tr.mu.Unlock()
		t.Fatalf("first server %s was not retired before its credential expired: %v", first, r.tr.log)
	}
}
