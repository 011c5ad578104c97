package topology

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// catalogCell is a cell as the Consul catalog shows it.
type catalogCell struct {
	cell    Cell
	passing bool
}

// DiscoveryConfig configures WatchConsul.
type DiscoveryConfig struct {
	// Service is the cell API service; default ServiceCell.
	Service string
	// Datacenters to follow; empty: every datacenter the agent knows
	// (WAN-joined), re-read every DatacenterRefresh.
	Datacenters []string
	// WaitTime bounds one blocking query; default 1m.
	WaitTime time.Duration
	// RetryDelay is the pause after a failed query; default 1s.
	RetryDelay time.Duration
	// DatacenterRefresh: how often the datacenter list is re-read when
	// Datacenters is empty; default 30s.
	DatacenterRefresh time.Duration
}

// WatchConsul makes the Consul catalog the source of which cells exist and
// whether they are alive: a cell is listed while some datacenter's catalog
// has its API service; it is failed while that service's checks are not
// passing (a killed cell turns critical within its check interval), and
// it disappears when deregistered (a clean shutdown). The NATS heartbeats
// Watch follows still give draining and heartbeat silence. It follows each
// datacenter with blocking queries until ctx ends.
func (r *Registry) WatchConsul(ctx context.Context, client *consul.Client, cfg DiscoveryConfig, log *slog.Logger) error {
	if cfg.Service == "" {
		cfg.Service = ServiceCell
	}
	if cfg.WaitTime <= 0 {
		cfg.WaitTime = time.Minute
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.DatacenterRefresh <= 0 {
		cfg.DatacenterRefresh = 30 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	r.mu.Lock()
	if r.catalog == nil {
		r.catalog = map[string]map[string]catalogCell{}
	}
	r.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watching := map[string]bool{}
	for {
		dcs := cfg.Datacenters
		if len(dcs) == 0 {
			var err error
			dcs, err = client.Catalog().Datacenters()
			if err != nil {
				log.Warn("consul datacenters", "err", err)
			}
		}
		for _, dc := range dcs {
			if watching[dc] {
				continue
			}
			watching[dc] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.watchDatacenter(ctx, client, dc, cfg, log)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.DatacenterRefresh):
		}
	}
}

// watchDatacenter follows one datacenter's instances of cfg.Service.
func (r *Registry) watchDatacenter(ctx context.Context, client *consul.Client, dc string, cfg DiscoveryConfig, log *slog.Logger) {
	var index uint64
	for ctx.Err() == nil {
		// With no instance Consul may answer index 0, and WaitIndex 0 does
		// not block: clamp to 1 or this loop busy-polls.
		q := (&consul.QueryOptions{Datacenter: dc, WaitIndex: max(index, 1), WaitTime: cfg.WaitTime}).WithContext(ctx)
		entries, meta, err := client.Health().Service(cfg.Service, "", false, q)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("consul health query", "dc", dc, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(cfg.RetryDelay):
				}
			}
			continue
		}
		if meta.LastIndex < index { // index went backwards: start over
			index = 0
		} else {
			index = meta.LastIndex
		}
		cells := map[string]catalogCell{}
		for _, e := range entries {
			m := e.Service.Meta
			id := m[MetaCell]
			if id == "" {
				continue
			}
			c := catalogCell{
				cell:    Cell{ID: id, Region: m[MetaRegion], API: m[MetaAPI], Relay: m[MetaRelay], Beacon: m[MetaRelay]},
				passing: e.Checks.AggregatedStatus() == consul.HealthPassing,
			}
			if prev, ok := cells[id]; ok && prev.passing { // several instances: one passing is enough
				continue
			}
			cells[id] = c
		}
		r.mu.Lock()
		for id := range cells {
			if _, known := r.catalog[dc][id]; !known {
				r.notifyLocked()
				break
			}
		}
		r.catalog[dc] = cells
		r.mu.Unlock()
	}
}

// catalogCellsLocked merges the catalog with the heartbeat view (r.mu held).
func (r *Registry) catalogCellsLocked() []Cell {
	merged := map[string]catalogCell{}
	for _, dc := range r.catalog {
		for id, c := range dc {
			if prev, ok := merged[id]; ok && prev.passing {
				continue
			}
			merged[id] = c
		}
	}
	out := make([]Cell, 0, len(merged))
	for id, c := range merged {
		cell := c.cell
		hb, heard := r.cells[id]
		switch {
		case !c.passing:
			cell.State = StateFailed
		case heard && hb.State != StateHealthy:
			cell.State = hb.State // draining, or failed by heartbeat silence
		default:
			cell.State = StateHealthy
		}
		if heard && hb.Version != "" {
			cell.Version = hb.Version
		}
		out = append(out, cell)
	}
	return out
}

// PreparedQuery is the definition EnsurePreparedQuery installs: the
// healthy instances of service in the datacenter the query is executed
// in, or, when it has none, in the NearestN nearest other datacenters (by
// Consul's network coordinates).
func PreparedQuery(name, service string, nearestN int) *consul.PreparedQueryDefinition {
	return &consul.PreparedQueryDefinition{
		Name: name,
		Service: consul.ServiceQuery{
			Service:     service,
			OnlyPassing: true,
			Failover:    consul.QueryFailoverOptions{NearestN: nearestN},
		},
	}
}

// EnsurePreparedQuery creates the prepared query def, or updates the one
// of the same name, and returns its id.
func EnsurePreparedQuery(ctx context.Context, client *consul.Client, def *consul.PreparedQueryDefinition) (string, error) {
	q := (&consul.QueryOptions{}).WithContext(ctx)
	list, _, err := client.PreparedQuery().List(q)
	if err != nil {
		return "", fmt.Errorf("prepared query %s: list: %w", def.Name, err)
	}
	w := (&consul.WriteOptions{}).WithContext(ctx)
	for _, existing := range list {
		if existing.Name == def.Name {
			d := *def
			d.ID = existing.ID
			if _, err := client.PreparedQuery().Update(&d, w); err != nil {
				return "", fmt.Errorf("prepared query %s: update: %w", def.Name, err)
			}
			return existing.ID, nil
		}
	}
	id, _, err := client.PreparedQuery().Create(def, w)
	if err != nil {
		return "", fmt.Errorf("prepared query %s: create: %w", def.Name, err)
	}
	return id, nil
}

// NearestCells executes the prepared query nameOrID as if from datacenter
// dc ("" = the agent's) and returns the cells it answered with and the
// datacenter they are in (another one when dc had no healthy cell).
func NearestCells(ctx context.Context, client *consul.Client, nameOrID, dc string) ([]Cell, string, error) {
	q := (&consul.QueryOptions{Datacenter: dc}).WithContext(ctx)
	resp, _, err := client.PreparedQuery().Execute(nameOrID, q)
	if err != nil {
		return nil, "", fmt.Errorf("prepared query %s: execute: %w", nameOrID, err)
	}
	var out []Cell
	for _, n := range resp.Nodes {
		m := n.Service.Meta
		if m[MetaCell] == "" {
			continue
		}
		out = append(out, Cell{ID: m[MetaCell], Region: m[MetaRegion], API: m[MetaAPI], Relay: m[MetaRelay], Beacon: m[MetaRelay], State: StateHealthy})
	}
	slices.SortFunc(out, func(a, b Cell) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, resp.Datacenter, nil
}
