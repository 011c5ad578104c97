package session

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestSessionWithoutResultIsLost: a session whose server never reports is
// marked lost after its mode's deadline (history updated, live state gone,
// session.lost published); a result arriving later still ends it.
func TestSessionWithoutResultIsLost(t *testing.T) {
	d := testenv.NewDatabase(t)
	testenv.CheckGoroutines(t)
	rd := testenv.NewRedis(t)
	sc := testenv.NewSuperCluster(t, "eu-west-1", "global")
	nc := testenv.ConnectAs(t, sc, sc.Server("eu-west-1"), natsauth.Cell("eu-west-1"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := New(Config{Cell: "eu-west-1", ResultDeadlines: map[string]time.Duration{"duel": time.Minute}}, Deps{Redis: rd.Client, DB: d.Pool, NATS: nc})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	watcher := testenv.Connect(t, sc.Server("eu-west-1"))
	lostEvents, _ := watcher.SubscribeSync(events.SessionEventSubject("eu-west-1", StatusLost))
	_ = watcher.Flush()
	now := time.Now()
	start := func(mode string, ago time.Duration) string {
		id := uuid.NewString()
		err := s.Start(ctx, Session{ID: id, Mode: mode, DGSID: "eu-west-1-dgs", GameAddr: netip.MustParseAddrPort("127.0.0.1:7000"),
			Teams: [][]string{{uuid.NewString()}, {uuid.NewString()}}, StartedAt: now.Add(-ago)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	overdue := start("duel", 2*time.Minute)  // past duel's 1 min deadline
	young := start("duel", 30*time.Second)   // within it
	squads := start("squads", 2*time.Minute) // squads: LiveTTL (2h)

	lost, err := s.ReapLost(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 1 || lost[0] != overdue {
		t.Fatalf("lost %v, want [%s]", lost, overdue)
	}
	for id, want := range map[string]string{overdue: StatusLost, young: StatusRunning, squads: StatusRunning} {
		if st, err := s.Status(ctx, id); err != nil || st != want {
			t.Fatalf("session %s: status %q (%v), want %q", id, st, err, want)
		}
	}
	uid, _ := uuid.Parse(overdue)
	if live, err := s.SessionLive(ctx, uid); err != nil || live {
		t.Fatalf("lost session still live: %v %v", live, err)
	}
	if _, err := lostEvents.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("session.lost: %v", err)
	}
	// Reaping again changes nothing.
	if again, err := s.ReapLost(ctx, now); err != nil || len(again) != 0 {
		t.Fatalf("second reap: %v %v", again, err)
	}
	// The real result, late: the session ends.
	if err := s.End(ctx, events.MatchResult{SessionID: overdue, DGSID: "eu-west-1-dgs", Reason: "time_limit"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx, overdue); st != StatusEnded {
		t.Fatalf("after the late result: %q", st)
	}
	// A result from another server does not end a session.
	if err := s.End(ctx, events.MatchResult{SessionID: young, DGSID: "eu-west-1-evil", Reason: "abandoned"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx, young); st != StatusRunning {
		t.Fatalf("forged result ended a session: %q", st)
	}
}
