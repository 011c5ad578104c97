package cellsources_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/global/cellsources"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/topology"
)

// sink records AddCell calls; fail makes the next calls for a cell fail.
type sink struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]int
}

func (s *sink) AddCell(_ context.Context, cell string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[cell] > 0 {
		s.fail[cell]--
		return errors.New("nats: timeout")
	}
	s.calls = append(s.calls, cell)
	return nil
}

func (s *sink) added() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// TestFollowerAddsEachCellOnce: the cells known at start and every cell
// that appears later reach every sink exactly once (another heartbeat of
// a known cell adds nothing); a failed AddCell is retried; an id that
// cannot name a subject token is skipped; Close ends Run, twice is fine.
func TestFollowerAddsEachCellOnce(t *testing.T) {
	testenv.CheckGoroutines(t)
	reg := topology.NewRegistry(topology.Cell{ID: "a"})
	res, tel := &sink{}, &sink{fail: map[string]int{"b": 2}}
	f, err := cellsources.New(cellsources.Config{RetryDelay: 10 * time.Millisecond}, cellsources.Deps{
		Topology: reg, Sinks: map[string]cellsources.Sink{"results": res, "telemetry": tel},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	want := func(s *sink, cells ...string) func() error {
		return func() error {
			if got := s.added(); !slices.Equal(got, cells) {
				return fmt.Errorf("added %v, want %v", got, cells)
			}
			return nil
		}
	}
	testenv.Eventually(t, 10*time.Second, want(res, "a"))
	testenv.Eventually(t, 10*time.Second, want(tel, "a"))

	reg.Put(topology.Cell{ID: "b"})
	reg.Put(topology.Cell{ID: "bad.id"})
	reg.Put(topology.Cell{ID: "a", State: topology.StateDraining})
	testenv.Eventually(t, 10*time.Second, want(res, "a", "b"))
	testenv.Eventually(t, 10*time.Second, want(tel, "a", "b")) // after two failures
	reg.Put(topology.Cell{ID: "c"})
	testenv.Eventually(t, 10*time.Second, want(res, "a", "b", "c"))
	testenv.Eventually(t, 10*time.Second, want(tel, "a", "b", "c"))

	_ = f.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	_ = f.Close()
}

func TestNewRequiresTopologyAndSinks(t *testing.T) {
	if _, err := cellsources.New(cellsources.DefaultConfig(), cellsources.Deps{Sinks: map[string]cellsources.Sink{"x": &sink{}}}); err == nil {
		t.Fatal("no topology accepted")
	}
	if _, err := cellsources.New(cellsources.DefaultConfig(), cellsources.Deps{Topology: topology.NewRegistry()}); err == nil {
		t.Fatal("no sinks accepted")
	}
}
