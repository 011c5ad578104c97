package session

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestResultBeforeStartEndsSession: a short match's server publishes its
// result before the cell committed the session's row (Start). The result
// must still end the session once the row exists, not be dropped and
// leave it running.
func TestResultBeforeStartEndsSession(t *testing.T) {
	testenv.PostgresURL(t, "postgres")
	testenv.CheckGoroutines(t)
	database := testenv.NewDatabase(t)
	rd := testenv.NewRedis(t)
	_, nc := testenv.NewNATS(t, "c1")
	s, err := New(Config{Cell: "c1"}, Deps{Redis: rd.Client, DB: database.Pool, NATS: nc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	sess := Session{ID: uuid.NewString(), Mode: "duel", DGSID: "c1-aaaa", GameAddr: netip.MustParseAddrPort("127.0.0.1:4000"),
		Teams: [][]string{{uuid.NewString()}, {uuid.NewString()}}}
	b, _ := json.Marshal(events.MatchResult{SessionID: sess.ID, Cell: "c1", GameMode: "duel", DGSID: sess.DGSID, EndedAt: time.Now(), Reason: "abandoned"})
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctx, events.MatchResultSubject("c1", sess.DGSID), b); err != nil {
		t.Fatal(err)
	}
	// The result was delivered (and not acknowledged as done) before the
	// session exists.
	testenv.Eventually(t, 10*time.Second, func() error {
		c, err := js.Consumer(ctx, events.MatchStream("c1"), "cell-results")
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.Delivered.Consumer < 1 {
			return fmt.Errorf("delivered %d", info.Delivered.Consumer)
		}
		return nil
	})
	if err := s.Start(ctx, sess); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		st, err := s.Status(ctx, sess.ID)
		if err != nil || st != StatusEnded {
			return fmt.Errorf("status %q %v", st, err)
		}
		return nil
	})
	// End writes the database first, then drops the live key.
	testenv.Eventually(t, 10*time.Second, func() error {
		if live, err := s.SessionLive(ctx, uuid.MustParse(sess.ID)); err != nil || live {
			return fmt.Errorf("ended session still live: %v %v", live, err)
		}
		return nil
	})
}
