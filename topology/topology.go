package topology

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/proto/events"
)

// Cell states.
const (
	StateHealthy  = "healthy"
	StateDraining = "draining"
	StateFailed   = "failed"
	// StateFailedOver: an operator failed the cell's region over
	// (`cellgrid region failover`); sticky until `region restore`.
	StateFailedOver = "failed_over"
)

// Cell is one regional cell as clients see it.
type Cell struct {
	ID      string `json:"id"`
	Region  string `json:"region"`
	API     string `json:"api"`    // base URL of the cell API
	Relay   string `json:"relay"`  // host:port of the UDP relay
	Beacon  string `json:"beacon"` // host:port answering UDP pings (the relay)
	State   string `json:"state"`
	Version string `json:"version,omitempty"`
}

// Joinable reports whether new tickets may go to the cell.
func (c Cell) Joinable() bool { return c.State == StateHealthy }

// ErrUnknownCell is returned when a cell id is not registered.
var ErrUnknownCell = errors.New("unknown cell")

// Registry holds the current topology. It is safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	cells    map[string]Cell      // guarded by mu
	lastSeen map[string]time.Time // guarded by mu: last heartbeat (or Put)
	// admin holds states an operator set with SetState; they win over
	// what heartbeats report until cleared.
	admin map[string]string // guarded by mu
	// failedOver holds the regions an operator failed over (the durable
	// record is the events.RegionBucket; see Failover).
	failedOver map[string]events.RegionFailover // guarded by mu
	// catalog is, per Consul datacenter, the cells its catalog lists
	// (guarded by mu). Non-nil once WatchConsul started: then the catalog,
	// not the heartbeats, says which cells exist and whether they are alive.
	catalog map[string]map[string]catalogCell
	// changed is closed (and replaced) when a cell id appears that was
	// not known before (guarded by mu; see Changed).
	changed chan struct{}
}

// NewRegistry returns a registry holding cells.
func NewRegistry(cells ...Cell) *Registry {
	r := &Registry{cells: map[string]Cell{}, lastSeen: map[string]time.Time{}, changed: make(chan struct{}),
		admin: map[string]string{}, failedOver: map[string]events.RegionFailover{}}
	for _, c := range cells {
		r.Put(c)
	}
	return r
}

// Put adds or replaces a cell; an empty state means healthy.
func (r *Registry) Put(c Cell) {
	if c.State == "" {
		c.State = StateHealthy
	}
	if c.Beacon == "" {
		c.Beacon = c.Relay
	}
	r.heard(c, time.Now())
}

// SetState marks a cell draining or failed, sticky: heartbeats do not
// change what an operator set. StateHealthy clears the override, so the
// cell's own reports count again.
func (r *Registry) SetState(id, state string) error {
	switch state {
	case StateHealthy, StateDraining, StateFailed:
	default:
		return fmt.Errorf("set state %q: invalid state", state)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cells[id]; !ok {
		return fmt.Errorf("set state of %s: %w", id, ErrUnknownCell)
	}
	if state == StateHealthy {
		delete(r.admin, id)
	} else {
		r.admin[id] = state
	}
	return nil
}

// effectiveLocked is c as clients see it: a failed-over region wins, then
// an operator's SetState, then what the cell reported (or its silence).
func (r *Registry) effectiveLocked(c Cell) Cell {
	if _, ok := r.failedOver[c.Region]; ok {
		c.State = StateFailedOver
	} else if st, ok := r.admin[c.ID]; ok {
		c.State = st
	}
	return c
}

// Changed returns a channel that is closed the next time a cell id the
// registry did not know appears (a first heartbeat, a Put, or a cell the
// Consul catalog lists). Take the channel before reading Cells so that no
// addition is missed: ch := r.Changed(); cells := r.Cells(); <-ch.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.changed
}

// notifyLocked wakes the Changed waiters (r.mu held for writing).
func (r *Registry) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Cells returns every cell sorted by id.
func (r *Registry) Cells() []Cell {
	r.mu.RLock()
	var out []Cell
	if r.catalog != nil {
		out = r.catalogCellsLocked()
	} else {
		out = make([]Cell, 0, len(r.cells))
		for _, c := range r.cells {
			out = append(out, c)
		}
	}
	for i := range out {
		out[i] = r.effectiveLocked(out[i])
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Cell) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Document is the body of GET /topology.
type Document struct {
	Cells   []Cell               `json:"cells"`
	Regions []events.RegionState `json:"regions"`
}

// Register mounts GET /topology on mux.
func (r *Registry) Register(mux httpapi.Mux) {
	mux.HandleFunc("GET /topology", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, Document{Cells: r.Cells(), Regions: r.Regions()})
	})
}

// Best picks the joinable cell with the lowest measured latency; cells
// without a measurement are ignored. ok is false when none qualifies.
func Best(cells []Cell, latency map[string]float64) (Cell, bool) {
	var best Cell
	found := false
	for _, c := range cells {
		l, measured := latency[c.ID]
		if !c.Joinable() || !measured {
			continue
		}
		if !found || l < latency[best.ID] {
			best, found = c, true
		}
	}
	return best, found
}
