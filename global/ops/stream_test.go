package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/topology"
)

// TestEventsStreamFollowsTheFleet reads the console's stream: the first
// snapshot at once, then a new one when a cell's state changes, with the
// DGS and session counts the cells publish on NATS (support and up).
func TestEventsStreamFollowsTheFleet(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}, StreamInterval: 50 * time.Millisecond})
	player := e.player("")
	pub := func(subject string, v any) {
		b, _ := json.Marshal(v)
		if err := e.nc.Publish(subject, b); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/ops/events", nil)
	req.Header.Set("X-Test-Player", admin.String())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, ct)
	}
	snaps := make(chan Snapshot, 64)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s Snapshot
				if json.Unmarshal([]byte(data), &s) == nil {
					snaps <- s
				}
			}
		}
		close(snaps)
	}()
	waitFor := func(what string, ok func(Snapshot) bool) Snapshot {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s, open := <-snaps:
				if !open {
					t.Fatalf("stream ended waiting for %s", what)
				}
				if ok(s) {
					return s
				}
			case <-deadline:
				t.Fatalf("no snapshot with %s", what)
			}
		}
	}
	cell := func(s Snapshot, id string) CellView {
		for _, r := range s.Regions {
			for _, c := range r.Cells {
				if c.ID == id {
					return c
				}
			}
		}
		return CellView{}
	}
	first := waitFor("two cells", func(s Snapshot) bool { return len(s.Regions) == 2 })
	if first.Role != RoleAdmin || first.Totals == nil || cell(first, "eu-1").State != "healthy" {
		t.Fatalf("first snapshot %+v", first)
	}
	if err := e.topo.SetState("eu-1", topology.StateDraining); err != nil {
		t.Fatal(err)
	}
	waitFor("eu-1 draining", func(s Snapshot) bool { return cell(s, "eu-1").State == "draining" })

	for i, st := range []events.DGSState{events.DGSReady, events.DGSReady, events.DGSAllocated} {
		pub(events.DGSHealthSubject("eu-1", fmt.Sprint("dgs-", i)), events.DGSHealth{ID: fmt.Sprint("dgs-", i), Cell: "eu-1", State: st, Version: "v7", At: time.Now()})
	}
	pub(events.SessionEventSubject("eu-1", "started"), events.SessionEvent{Kind: "started", SessionID: "s1", Cell: "eu-1", Players: []string{"a", "b"}})
	pub(events.SessionEventSubject("eu-1", "started"), events.SessionEvent{Kind: "started", SessionID: "s2", Cell: "eu-1", Players: []string{"c", "d"}})
	pub(events.SessionEventSubject("eu-1", "ended"), events.SessionEvent{Kind: "ended", SessionID: "s2", Cell: "eu-1"})
	s := waitFor("eu-1's load", func(s Snapshot) bool {
		l := cell(s, "eu-1").Load
		return l != nil && l.DGS["v7"]["ready"] == 2 && l.DGS["v7"]["allocated"] == 1 && l.Players == 2 && l.Matches == 1 && l.MatchesPerMinute == 2
	})
	if s.Totals.Ready != 2 || s.Totals.Allocated != 1 || s.Totals.Players != 2 {
		t.Fatalf("totals %+v", s.Totals)
	}

	// A player sees the public part only.
	var ps Snapshot
	if code, _ := e.call("GET", "/ops/snapshot", player, "", &ps); code != 200 || ps.Role != RolePlayer || ps.Totals != nil || ps.Flags != nil ||
		cell(ps, "eu-1").Load != nil || cell(ps, "eu-1").State != "draining" {
		t.Fatalf("player snapshot: %d %+v", code, ps)
	}
	if code, ecode := e.call("GET", "/ops/events?count=x", admin, "", nil); code != 400 || ecode != "invalid_count" {
		t.Fatalf("bad count: %d %s", code, ecode)
	}
}

// TestEventsStreamEndsWithRun: an open console stream ends when the ops
// layer stops, so it never holds the HTTP server's graceful shutdown.
func TestEventsStreamEndsWithRun(t *testing.T) {
	admin := uuid.New()
	d := testenv.NewDatabase(t)
	_, nc := testenv.NewNATS(t, "global")
	o, err := New(Config{Admins: Holders{PlayerIDs: []string{admin.String()}}, StreamInterval: 20 * time.Millisecond},
		Deps{DB: d.Pool, NATS: nc, Topology: topology.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	req := httptest.NewRequest("GET", "/ops/events", nil).WithContext(context.WithValue(context.Background(), callerKey{}, caller{ID: admin, Role: RoleAdmin}))
	rec := httptest.NewRecorder()
	ended := make(chan error, 1)
	go func() { ended <- o.handleEvents(rec, req) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream outlived Run")
	}
	if !strings.Contains(rec.Body.String(), "event: snapshot") {
		t.Fatalf("no snapshot was sent: %q", rec.Body.String())
	}
}

// TestEventsStreamOutlivesServerTimeouts: behind a server whose read and
// write timeouts are short, the console stream stays open and keeps
// delivering changes.
func TestEventsStreamOutlivesServerTimeouts(t *testing.T) {
	admin := uuid.New()
	d := testenv.NewDatabase(t)
	_, nc := testenv.NewNATS(t, "global")
	topo := topology.NewRegistry(topology.Cell{ID: "eu-1", Region: "eu", API: "http://127.0.0.1:1", Relay: "127.0.0.1:2"})
	o, err := New(Config{Admins: Holders{PlayerIDs: []string{admin.String()}}, StreamInterval: 20 * time.Millisecond},
		Deps{DB: d.Pool, NATS: nc, Topology: topo, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := httpapi.NewRouter()
	o.Register(mux, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(accesstoken.WithClaims(r.Context(), accesstoken.Claims{PlayerID: admin.String()})))
		})
	})
	const timeout = 300 * time.Millisecond
	hs, err := httpapi.New(httpapi.Config{ReadTimeout: timeout, WriteTimeout: timeout}, httpapi.Deps{Handler: mux})
	if err != nil {
		t.Fatal(err)
	}
	hs.Start()
	defer hs.Close()
	res, err := http.Get(hs.URL() + "/ops/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	states := make(chan string, 16)
	go func() {
		defer close(states)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s Snapshot
				if json.Unmarshal([]byte(data), &s) == nil && len(s.Regions) == 1 {
					states <- s.Regions[0].Cells[0].State
				}
			}
		}
	}()
	if st := <-states; st != "healthy" {
		t.Fatalf("first state %q", st)
	}
	// Change the cell well after both timeouts have passed.
	deadline := time.Now().Add(4 * timeout)
	for time.Now().Before(deadline) {
		select {
		case st, ok := <-states:
			if !ok {
				t.Fatal("the stream ended before the server's timeouts would matter")
			}
			t.Fatalf("unexpected snapshot %q", st)
		case <-time.After(deadline.Sub(time.Now())):
		}
	}
	if err := topo.SetState("eu-1", topology.StateDraining); err != nil {
		t.Fatal(err)
	}
	select {
	case st, ok := <-states:
		if !ok || st != "draining" {
			t.Fatalf("after the timeouts: %q (stream open: %v), want draining", st, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot after the change")
	}
}
