package jobs

// These tests run NomadLauncher against fakeNomad, an httptest.Server that
// implements the three Nomad HTTP endpoints the launcher calls (dispatch,
// job allocations with X-Nomad-Index blocking semantics, deregister). They
// check the launcher's use of the Nomad API — requests, meta, WaitIndex,
// reaction to allocation states — not Nomad itself: scheduling, the
// raw_exec driver, NOMAD_META_* interpolation and port allocation are not
// exercised here.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/cellgrid/cellgrid/cell/fleet"
)

type fakeNomad struct {
	t  *testing.T
	mu sync.Mutex
	// index is the allocations' index: 0 while the job has none, like Nomad.
	index   uint64
	changed chan struct{} // closed and replaced on every change
	allocs  []*api.AllocationListStub

	dispatches  []api.JobDispatchRequest
	dispatchJob string
	waitIndexes []string // "index" query parameter of every allocations request
	deregisters []string // "<job>?purge=<bool>"
	// onDeregister runs (under mu) when the job is deregistered.
	onDeregister func(f *fakeNomad)
	failDispatch bool
}

const dispatchedID = DefaultDGSJobID + "/dispatch-1700000000-abcd1234"

func newFakeNomad(t *testing.T) (*fakeNomad, *api.Client) {
	f := &fakeNomad{t: t, changed: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// setAllocs replaces the allocation list and bumps the index (f.mu held).
func (f *fakeNomad) setAllocsLocked(status ...string) {
	f.index++
	if f.index == 1 {
		f.index = 10 // any real index is far above 1
	}
	f.allocs = nil
	for i, s := range status {
		f.allocs = append(f.allocs, &api.AllocationListStub{ID: fmt.Sprintf("alloc-%d", i), JobID: dispatchedID,
			ClientStatus: s, ModifyIndex: f.index})
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeNomad) setAllocs(status ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setAllocsLocked(status...)
}

func (f *fakeNomad) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	rest, ok := strings.CutPrefix(p, "/v1/job/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case r.Method == http.MethodPut && strings.HasSuffix(rest, "/dispatch"):
		var req api.JobDispatchRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.mu.Lock()
		f.dispatches = append(f.dispatches, req)
		f.dispatchJob = strings.TrimSuffix(rest, "/dispatch")
		fail := f.failDispatch
		f.mu.Unlock()
		if fail {
			http.Error(w, "missing required meta", 500)
			return
		}
		w.Header().Set("X-Nomad-Index", "9")
		_ = json.NewEncoder(w).Encode(api.JobDispatchResponse{DispatchedJobID: dispatchedID, EvalID: "eval-1"})

	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/allocations"):
		if strings.TrimSuffix(rest, "/allocations") != dispatchedID {
			http.Error(w, "wrong job "+rest, 400)
			return
		}
		q := r.URL.Query()
		f.mu.Lock()
		f.waitIndexes = append(f.waitIndexes, q.Get("index"))
		wait, _ := strconv.ParseUint(q.Get("index"), 10, 64)
		for f.index <= wait && wait > 0 { // Nomad: WaitIndex 0 never blocks
			ch := f.changed
			f.mu.Unlock()
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			case <-time.After(2 * time.Second): // a short "wait" timeout
			}
			f.mu.Lock()
			if f.index <= wait {
				break
			}
		}
		allocs, idx := f.allocs, f.index
		f.mu.Unlock()
		w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
		w.Header().Set("X-Nomad-KnownLeader", "true")
		if allocs == nil {
			allocs = []*api.AllocationListStub{}
		}
		_ = json.NewEncoder(w).Encode(allocs)

	case r.Method == http.MethodDelete:
		f.mu.Lock()
		f.deregisters = append(f.deregisters, rest+"?purge="+r.URL.Query().Get("purge"))
		if f.onDeregister != nil {
			f.onDeregister(f)
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(api.JobDeregisterResponse{EvalID: "eval-2"})

	default:
		http.Error(w, "unexpected "+r.Method+" "+p, 405)
		f.t.Errorf("unexpected request %s %s", r.Method, p)
	}
}

func (f *fakeNomad) snapshot() (dispatches []api.JobDispatchRequest, waits, deregs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.JobDispatchRequest(nil), f.dispatches...), append([]string(nil), f.waitIndexes...), append([]string(nil), f.deregisters...)
}

func assertNoZeroWaitIndex(t *testing.T, waits []string) {
	t.Helper()
	if len(waits) == 0 {
		t.Fatal("no allocation query")
	}
	for i, w := range waits {
		if n, err := strconv.ParseUint(w, 10, 64); err != nil || n == 0 {
			t.Fatalf("allocation query %d sent index=%q: WaitIndex must be >= 1 (%v)", i, w, waits)
		}
	}
}

func launchSpec() fleet.LaunchSpec {
	return fleet.LaunchSpec{ID: "dgs-7", Cell: "eu-west-1", NATSURL: "nats://ignored", Version: fleet.Version{Name: "v3", Command: "ignored"}}
}

func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	if d == 0 {
		return false
	}
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestNomadLauncherExitedWhenAllocCompletes(t *testing.T) {
	f, c := newFakeNomad(t)
	l := &NomadLauncher{Client: c, RetryDelay: 10 * time.Millisecond}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h, err := l.Start(ctx, launchSpec())
	if err != nil {
		t.Fatal(err)
	}
	if DispatchedJobID(h) != dispatchedID {
		t.Fatalf("dispatched id %q", DispatchedJobID(h))
	}
	d, _, _ := f.snapshot()
	f.mu.Lock()
	target := f.dispatchJob
	f.mu.Unlock()
	if len(d) != 1 || target != DefaultDGSJobID {
		t.Fatalf("dispatches %+v to %q", d, target)
	}
	want := map[string]string{"cell": "eu-west-1", "dgs_id": "dgs-7", "version": "v3"}
	if fmt.Sprint(d[0].Meta) != fmt.Sprint(want) {
		t.Fatalf("meta %v, want %v", d[0].Meta, want)
	}

	// No allocation yet: Nomad answers index 0. The watcher must block
	// (WaitIndex 1), not busy-poll.
	time.Sleep(300 * time.Millisecond)
	_, waits, _ := f.snapshot()
	if len(waits) > 3 {
		t.Fatalf("%d allocation queries in 300ms with no allocation: busy polling", len(waits))
	}
	for _, st := range []string{api.AllocClientStatusPending, api.AllocClientStatusRunning} {
		f.setAllocs(st)
		if closedWithin(h.Exited(), 200*time.Millisecond) {
			t.Fatalf("Exited closed while the alloc is %s", st)
		}
	}
	f.setAllocs(api.AllocClientStatusComplete)
	if !closedWithin(h.Exited(), 5*time.Second) {
		t.Fatal("Exited not closed after the alloc completed")
	}
	_, waits, deregs := f.snapshot()
	assertNoZeroWaitIndex(t, waits)
	if len(deregs) != 0 {
		t.Fatalf("unexpected deregister %v", deregs)
	}
	// Stop on an exited handle is a no-op.
	if err := l.Stop(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, _, deregs := f.snapshot(); len(deregs) != 0 {
		t.Fatalf("Stop of an exited handle deregistered: %v", deregs)
	}
}

// waitQueried waits until the launcher has sent a blocking allocations
// query at or past the fake's current index: it has seen the latest state
// and is waiting for the next.
func waitQueried(t *testing.T, f *fakeNomad) {
	t.Helper()
	f.mu.Lock()
	want := f.index
	f.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, waits, _ := f.snapshot()
		for _, w := range waits {
			if n, err := strconv.ParseUint(w, 10, 64); err == nil && n >= want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no allocations query at index ≥ %d: %v", want, waits)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNomadLauncherStopDeregistersAndWaits(t *testing.T) {
	f, c := newFakeNomad(t)
	deregistered := make(chan struct{})
	f.onDeregister = func(*fakeNomad) { close(deregistered) } // the task keeps running until the test ends it
	l := &NomadLauncher{Client: c}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := l.Start(ctx, launchSpec())
	if err != nil {
		t.Fatal(err)
	}
	f.setAllocs(api.AllocClientStatusRunning)
	waitQueried(t, f) // the watcher knows the task runs
	// Stop must not return before the task has ended: record whether
	// Exited was closed at the moment it returned.
	stopped := make(chan error, 1)
	go func() {
		err := l.Stop(ctx, h)
		if err == nil && !closedWithin(h.Exited(), 0) {
			err = errors.New("Stop returned before Exited closed")
		}
		stopped <- err
	}()
	select {
	case <-deregistered:
	case err := <-stopped:
		t.Fatalf("Stop returned %v without deregistering", err)
	case <-ctx.Done():
		t.Fatal("Stop never deregistered the job")
	}
	// Deregistered, but the task has not ended: Stop must still wait.
	waitQueried(t, f)
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v while the allocation still ran", err)
	default:
	}
	f.setAllocs(api.AllocClientStatusComplete) // the client killed the task
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	_, waits, deregs := f.snapshot()
	if len(deregs) != 1 || deregs[0] != dispatchedID+"?purge=true" {
		t.Fatalf("deregisters %v", deregs)
	}
	assertNoZeroWaitIndex(t, waits)
}

func TestNomadLauncherStopHonoursContext(t *testing.T) {
	f, c := newFakeNomad(t)
	l := &NomadLauncher{Client: c}
	defer l.Close()
	h, err := l.Start(context.Background(), launchSpec())
	if err != nil {
		t.Fatal(err)
	}
	f.setAllocs(api.AllocClientStatusRunning) // never ends
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := l.Stop(ctx, h); err != context.DeadlineExceeded {
		t.Fatalf("Stop = %v, want deadline exceeded", err)
	}
}

func TestNomadLauncherErrors(t *testing.T) {
	f, c := newFakeNomad(t)
	f.failDispatch = true
	l := &NomadLauncher{Client: c}
	defer l.Close()
	if _, err := l.Start(context.Background(), launchSpec()); err == nil || !strings.Contains(err.Error(), "dispatch") {
		t.Fatalf("Start with a failing dispatch = %v", err)
	}
	if _, err := l.Start(context.Background(), fleet.LaunchSpec{ID: "x"}); err == nil {
		t.Fatal("Start without cell/version accepted")
	}
	if err := l.Stop(context.Background(), foreignHandle{}); err == nil {
		t.Fatal("Stop of a foreign handle accepted")
	}
}

type foreignHandle struct{}

func (foreignHandle) Exited() <-chan struct{} { return nil }
