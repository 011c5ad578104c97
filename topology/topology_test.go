package topology

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBestSkipsUnhealthyAndUnmeasured(t *testing.T) {
	cells := []Cell{
		{ID: "eu", State: StateHealthy},
		{ID: "us", State: StateDraining},
		{ID: "ap", State: StateHealthy},
		{ID: "sa", State: StateHealthy},
	}
	lat := map[string]float64{"eu": 40, "us": 5, "ap": 30}
	c, ok := Best(cells, lat)
	if !ok || c.ID != "ap" {
		t.Fatalf("best = %v %v, want ap (us is draining, sa unmeasured)", c.ID, ok)
	}
	if _, ok := Best(cells[1:2], lat); ok {
		t.Fatal("draining-only topology gave a cell")
	}
}

func TestRegistryHTTP(t *testing.T) {
	r := NewRegistry(Cell{ID: "b", Relay: "127.0.0.1:2"}, Cell{ID: "a", Relay: "127.0.0.1:1"})
	if err := r.SetState("b", StateFailed); err != nil {
		t.Fatal(err)
	}
	if err := r.SetState("zz", StateFailed); err == nil {
		t.Fatal("unknown cell accepted")
	}
	if err := r.SetState("a", "bogus"); err == nil {
		t.Fatal("bogus state accepted")
	}
	mux := http.NewServeMux()
	r.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/topology", nil))
	var doc Document
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cells) != 2 || doc.Cells[0].ID != "a" || doc.Cells[0].Beacon != "127.0.0.1:1" || doc.Cells[1].State != StateFailed {
		t.Fatalf("topology = %+v", doc.Cells)
	}
}

// TestChangedOnNewCellOnly: Changed fires when an unknown cell appears,
// not on another heartbeat of a known one.
func TestChangedOnNewCellOnly(t *testing.T) {
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	r := NewRegistry(Cell{ID: "eu"})
	ch := r.Changed()
	r.Put(Cell{ID: "eu", State: StateDraining})
	if closed(ch) {
		t.Fatal("Changed fired for a cell already known")
	}
	r.Put(Cell{ID: "us"})
	if !closed(ch) {
		t.Fatal("Changed did not fire for a new cell")
	}
	if closed(r.Changed()) {
		t.Fatal("a fresh Changed channel is already closed")
	}
}
