package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

const cell = "eu-test-1"

// healthWatch collects heartbeats of one DGS.
type healthWatch struct{ ch chan events.DGSHealth }

func watchHealth(t *testing.T, nc *nats.Conn) *healthWatch {
	t.Helper()
	w := &healthWatch{ch: make(chan events.DGSHealth, 256)}
	sub, err := nc.Subscribe(events.DGSHealthSubject(cell), func(m *nats.Msg) {
		var h events.DGSHealth
		if json.Unmarshal(m.Data, &h) == nil {
			select {
			case w.ch <- h:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitState waits (with a deadline) for a heartbeat in state.
func (w *healthWatch) waitState(t *testing.T, state events.DGSState) events.DGSHealth {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case h := <-w.ch:
			if h.State == state {
				return h
			}
		case <-deadline:
			t.Fatalf("no heartbeat in state %q", state)
		}
	}
}

func startSDK(t *testing.T, nc *nats.Conn, id string) (*SDK, func()) {
	t.Helper()
	s, err := New(Config{Cell: cell, ID: id, Version: "test", GameAddr: "127.0.0.1:7777", NATS: nc, HealthInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

func allocate(t *testing.T, nc *nats.Conn, id string, a events.Allocation) events.AllocationReply {
	t.Helper()
	b, _ := json.Marshal(a)
	m, err := nc.Request(events.DGSAllocateSubject(cell, id), b, 5*time.Second)
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	var r events.AllocationReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLifecycle(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, cell)
	w := watchHealth(t, nc)
	s, stop := startSDK(t, nc, "dgs-1")

	h := w.waitState(t, events.DGSScheduled)
	if h.ID != "dgs-1" || h.Cell != cell || h.GameAddr != "127.0.0.1:7777" || h.Version != "test" {
		t.Fatalf("heartbeat %+v", h)
	}
	// Not ready yet: refused.
	if r := allocate(t, nc, "dgs-1", events.Allocation{SessionID: "s0"}); r.OK {
		t.Fatal("allocation accepted before Ready")
	}

	var refuse atomic.Bool
	var got atomic.Value
	s.HandleAllocate(func(a events.Allocation) error {
		if refuse.Load() {
			return errors.New("no thanks")
		}
		got.Store(a)
		return nil
	})
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
	w.waitState(t, events.DGSReady)

	refuse.Store(true)
	if r := allocate(t, nc, "dgs-1", events.Allocation{SessionID: "s1"}); r.OK || r.Error != "no thanks" {
		t.Fatalf("refusing handler: %+v", r)
	}
	if st, _ := s.State(); st != events.DGSReady {
		t.Fatalf("state after refusal: %s", st)
	}
	refuse.Store(false)
	a := events.Allocation{SessionID: "s2", GameMode: "arena", Players: []string{"p1", "p2"}}
	if r := allocate(t, nc, "dgs-1", a); !r.OK {
		t.Fatalf("allocation refused: %+v", r)
	}
	if g := got.Load().(events.Allocation); g.SessionID != "s2" || len(g.Players) != 2 {
		t.Fatalf("handler got %+v", g)
	}
	h = w.waitState(t, events.DGSAllocated)
	if h.SessionID != "s2" {
		t.Fatalf("allocated heartbeat %+v", h)
	}
	// A retried request for the same session is OK; another session is not.
	if r := allocate(t, nc, "dgs-1", a); !r.OK {
		t.Fatalf("retry refused: %+v", r)
	}
	if r := allocate(t, nc, "dgs-1", events.Allocation{SessionID: "s3"}); r.OK {
		t.Fatal("second session accepted while allocated")
	}
	// Back to the pool.
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
	if h := w.waitState(t, events.DGSReady); h.SessionID != "" {
		t.Fatalf("ready heartbeat keeps session: %+v", h)
	}

	// A shutdown request reaches the handler.
	asked := make(chan struct{}, 1)
	s.HandleShutdownRequest(func() { asked <- struct{}{} })
	if err := nc.Publish(events.DGSShutdownSubject(cell, "dgs-1"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown request not delivered")
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	w.waitState(t, events.DGSShutdown)
	if err := s.Ready(); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Ready after Shutdown: %v", err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	stop()
}

func TestShutdownRequestDefault(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, cell)
	w := watchHealth(t, nc)
	s, _ := startSDK(t, nc, "dgs-2")
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
	w.waitState(t, events.DGSReady)
	if err := nc.Publish(events.DGSShutdownSubject(cell, "dgs-2"), nil); err != nil {
		t.Fatal(err)
	}
	w.waitState(t, events.DGSShutdown)
}

func TestReportResultExactlyOnce(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, cell)
	s1, _ := startSDK(t, nc, "dgs-a")
	s2, _ := startSDK(t, nc, "dgs-b") // a second process retrying the same result
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	r := events.MatchResult{SessionID: "sess-1", GameMode: "arena", WinnerTeam: -1, Reason: "time_limit"}
	for i := 0; i < 2; i++ {
		if err := s1.ReportResult(ctx, r); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	if err := s2.ReportResult(ctx, r); err != nil {
		t.Fatalf("report from another sdk: %v", err)
	}
	if err := s1.ReportResult(ctx, events.MatchResult{}); !errors.Is(err, ErrNoSession) {
		t.Fatalf("empty session: %v", err)
	}
	if err := s1.ReportResult(ctx, events.MatchResult{SessionID: "sess-2"}); err != nil {
		t.Fatal(err)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, events.MatchStream(cell))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2", info.State.Msgs)
	}
	if info.Config.Placement == nil || info.Config.Placement.Cluster != cell {
		t.Fatalf("placement %+v", info.Config.Placement)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got events.MatchResult
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.SessionID != "sess-1" || got.Cell != cell || got.DGSID != "dgs-a" || m.Header.Get(jetstream.MsgIDHeader) != "sess-1" {
		t.Fatalf("stored %+v header %v", got, m.Header)
	}
}
