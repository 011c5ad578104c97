package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/dgs"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// dgsEnv makes the re-executed test binary run the real DGS (dgs.Main)
// with the flags the local launcher passes.
const dgsEnv = "CELLGRID_TEST_DGS"

// TestMain re-executes the test binary as a DGS when the fleet launches it.
func TestMain(m *testing.M) {
	if os.Getenv(dgsEnv) == "1" {
		os.Exit(dgs.Main(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

const cellID = "test-cell"

// connectKey is the cell key allocations carry; the fleet tests never
// connect a player, so nobody signs with it.
var connectKey = func() string {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	return base64.StdEncoding.EncodeToString(pub)
}()

// allocation is a well-formed allocation for mode with players fresh
// player ids (the real DGS refuses a malformed one). Nobody joins, so
// the match is abandoned after --wait-for-players.
func allocation(mode string, players int) events.Allocation {
	a := events.Allocation{SessionID: uuid.NewString(), GameMode: mode, ConnectKeys: []string{connectKey}}
	for range players {
		a.Players = append(a.Players, uuid.NewString())
	}
	return a
}

func testVersion(name string, extra ...string) Version {
	return Version{Name: name, Command: os.Args[0], Args: append([]string{"--health-interval=100ms"}, extra...)}
}

// transitions records OnStateChange calls.
type transitions struct {
	mu  sync.Mutex
	log []string // guarded by mu; "id from→to"
}

func (tr *transitions) record(id string, from, to events.DGSState) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.log = append(tr.log, id+" "+string(from)+"→"+string(to))
}

func (tr *transitions) saw(id string, state events.DGSState) bool {
	to := string(state)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, l := range tr.log {
		if len(l) > len(id) && l[:len(id)] == id && l[len(l)-len(to):] == to {
			return true
		}
	}
	return false
}

type fleetRig struct {
	f   *Fleet
	nc  *nats.Conn
	tr  *transitions
	run func() // cancels Run and waits for it
}

func startFleet(t testing.TB, cfg Config) *fleetRig {
	t.Helper()
	return startFleetWith(t, cfg, &LocalLauncher{Env: []string{dgsEnv + "=1"}, StopGrace: 2 * time.Second, Output: os.Stderr})
}

// startFleetWith runs a fleet launching its servers with l.
func startFleetWith(t testing.TB, cfg Config, l Launcher) *fleetRig {
	t.Helper()
	testenv.CheckGoroutines(t)
	srv, nc := testenv.NewNATS(t, cellID)
	tr := &transitions{}
	cfg.Cell, cfg.NATSURL, cfg.OnStateChange = cellID, srv.ClientURL(), tr.record
	if cfg.Version.Name == "" {
		cfg.Version = testVersion("v1")
	}
	if cfg.HealthTimeout == 0 {
		cfg.HealthTimeout = time.Second
	}
	cfg.AutoscaleInterval = 50 * time.Millisecond
	// The servers publish their results to the cell's match stream.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancelStream := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStream()
	if err := events.EnsureMatchStream(sctx, js, cellID, time.Minute); err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg, Deps{NATS: nc, Launcher: l})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("fleet run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &fleetRig{f: f, nc: nc, tr: tr, run: stop}
}

func count(f *Fleet, state events.DGSState, version string) (n int) {
	for _, s := range f.Servers() {
		if s.State == state && (version == "" || s.Version == version) {
			n++
		}
	}
	return n
}

func waitReady(t testing.TB, f *Fleet, n int, version string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		if got := count(f, events.DGSReady, version); got != n {
			return fmt.Errorf("%d ready %s servers, want %d: %+v", got, version, n, f.Servers())
		}
		return nil
	})
}

func TestWarmBufferRefillsAfterAllocation(t *testing.T) {
	r := startFleet(t, Config{Buffer: 2, Max: 4})
	waitReady(t, r.f, 2, "v1")
	a, err := r.f.Allocate(context.Background(), allocation("duel", 2))
	if err != nil {
		t.Fatal(err)
	}
	if !a.GameAddr.IsValid() || a.GameAddr.Port() == 0 {
		t.Fatalf("game addr %v", a.GameAddr)
	}
	waitReady(t, r.f, 2, "v1")
	if n := count(r.f, events.DGSAllocated, ""); n != 1 {
		t.Fatalf("%d allocated", n)
	}
	r.run()
	if n := len(r.f.Servers()); n != 0 {
		t.Fatalf("%d servers left after Run returned: %+v", n, r.f.Servers())
	}
}

func TestAllocationIsAtomic(t *testing.T) {
	r := startFleet(t, Config{Buffer: 3, Max: 3})
	waitReady(t, r.f, 3, "v1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	var none int
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := r.f.Allocate(context.Background(), allocation("duel", 2))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNoReadyServer):
				none++
			case err != nil:
				t.Error(err)
			default:
				got[a.ServerID]++
			}
		}()
	}
	wg.Wait()
	if len(got) != 3 || none != 9 {
		t.Fatalf("allocations per server %v, %d without a server", got, none)
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("server %s allocated %d times", id, n)
		}
	}
}

func TestKilledServerIsMarkedUnhealthyAndReplaced(t *testing.T) {
	r := startFleet(t, Config{Buffer: 2, Max: 4})
	waitReady(t, r.f, 2, "v1")
	victim := r.f.Servers()[0]
	if err := syscall.Kill(PIDOf(victim.Handle), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if !r.tr.saw(victim.ID, events.DGSUnhealthy) {
			return errors.New("victim never unhealthy")
		}
		for _, s := range r.f.Servers() {
			if s.ID == victim.ID {
				return errors.New("victim still listed")
			}
		}
		if n := count(r.f, events.DGSReady, "v1"); n != 2 {
			return fmt.Errorf("%d ready", n)
		}
		return nil
	})
}

func TestSilentServerIsMarkedUnhealthyAndReplaced(t *testing.T) {
	r := startFleet(t, Config{Buffer: 1, Max: 3, HealthTimeout: 500 * time.Millisecond})
	waitReady(t, r.f, 1, "v1")
	victim := r.f.Servers()[0]
	pid := PIDOf(victim.Handle)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil { // alive but silent
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if !r.tr.saw(victim.ID, events.DGSUnhealthy) {
			return errors.New("victim never unhealthy")
		}
		for _, s := range r.f.Servers() {
			if s.ID == victim.ID {
				return errors.New("victim still listed")
			}
		}
		if n := count(r.f, events.DGSReady, "v1"); n != 1 {
			return fmt.Errorf("%d ready", n)
		}
		return nil
	})
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatal("silent server process still exists")
	}
}

func TestRolloutReplacesReadyAndLetsAllocatedFinish(t *testing.T) {
	r := startFleet(t, Config{Buffer: 2, Max: 6, Version: testVersion("v1", "--wait-for-players=1500ms")})
	waitReady(t, r.f, 2, "v1")
	// The match result is recorded in the same log as the state changes, so
	// the test sees whether it came before the server was shut down.
	results, err := r.nc.Subscribe(events.MatchResultSubject(cellID), func(m *nats.Msg) {
		var res events.MatchResult
		if err := json.Unmarshal(m.Data, &res); err != nil {
			t.Errorf("match result: %v", err)
			return
		}
		r.tr.record("result "+res.DGSID, events.DGSState(res.SessionID), events.DGSState(res.Reason))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer results.Unsubscribe()
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	alloc := allocation("duel", 2)
	a, err := r.f.Allocate(context.Background(), alloc)
	if err != nil {
		t.Fatal(err)
	}
	r.f.SetVersion(testVersion("v2"))
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := count(r.f, events.DGSReady, "v2"); n != 2 {
			return fmt.Errorf("%d ready v2", n)
		}
		if n := count(r.f, events.DGSReady, "v1"); n != 0 {
			return fmt.Errorf("%d ready v1", n)
		}
		return nil
	})
	// The allocated v1 server finishes its match, reports Ready, and is
	// retired rather than reused.
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, s := range r.f.Servers() {
			if s.ID == a.ServerID {
				return fmt.Errorf("v1 server %s still %s", s.ID, s.State)
			}
		}
		return nil
	})
	// Its history must be: allocated, the match's result, back to Ready,
	// then shut down. Allocated→Shutdown is a match cut by the rollout
	// (the real DGS then reports it as abandoned too, at once).
	var history []string
	r.tr.mu.Lock()
	for _, l := range r.tr.log {
		if strings.HasPrefix(l, a.ServerID+" ") || strings.HasPrefix(l, "result "+a.ServerID+" ") {
			history = append(history, strings.TrimPrefix(strings.TrimPrefix(l, "result "), a.ServerID+" "))
		}
	}
	r.tr.mu.Unlock()
	// (The result and the Ready heartbeat travel on different subjects:
	// their order here is not the DGS's.)
	want := []string{
		string(events.DGSReady) + "→" + string(events.DGSAllocated),
		string(events.DGSAllocated) + "→" + string(events.DGSReady),
		string(events.DGSReady) + "→" + string(events.DGSShutdown),
	}
	if i := indexOfSequence(history, want); i < 0 {
		t.Fatalf("allocated v1 server %s: history %q, want the subsequence %q (its match must end before it shuts down)", a.ServerID, history, want)
	}
	result := alloc.SessionID + "→abandoned" // nobody joins: it ends after --wait-for-players
	if indexOfSequence(history, []string{string(events.DGSReady) + "→" + string(events.DGSAllocated), result,
		string(events.DGSReady) + "→" + string(events.DGSShutdown)}) < 0 {
		t.Fatalf("allocated v1 server %s: history %q: its match result must arrive before it shuts down", a.ServerID, history)
	}
	for _, h := range history {
		if h == string(events.DGSAllocated)+"→"+string(events.DGSShutdown) {
			t.Fatalf("allocated v1 server %s was shut down mid-match: %q", a.ServerID, history)
		}
	}
}

// indexOfSequence returns where want occurs in order (not necessarily
// adjacent) in got, or -1.
func indexOfSequence(got, want []string) int {
	first, j := -1, 0
	for i, g := range got {
		if j < len(want) && g == want[j] {
			if j == 0 {
				first = i
			}
			j++
		}
	}
	if j < len(want) {
		return -1
	}
	return first
}
