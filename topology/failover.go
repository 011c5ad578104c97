package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/proto/events"
)

// Regions returns every region the registry knows (from its cells or a
// failover record), sorted, with its state and cells.
func (r *Registry) Regions() []events.RegionState {
	r.mu.RLock()
	defer r.mu.RUnlock()
	by := map[string]*events.RegionState{}
	get := func(region string) *events.RegionState {
		rs, ok := by[region]
		if !ok {
			rs = &events.RegionState{Region: region, State: events.RegionActive}
			by[region] = rs
		}
		return rs
	}
	for _, c := range r.cells {
		rs := get(c.Region)
		rs.Cells = append(rs.Cells, c.ID)
	}
	for region, f := range r.failedOver {
		rs := get(region)
		rs.State, rs.To = events.RegionFailedOver, f.To
	}
	out := make([]events.RegionState, 0, len(by))
	for _, rs := range by {
		slices.Sort(rs.Cells)
		out = append(out, *rs)
	}
	slices.SortFunc(out, func(a, b events.RegionState) int {
		switch {
		case a.Region < b.Region:
			return -1
		case a.Region > b.Region:
			return 1
		}
		return 0
	})
	return out
}

// FailedOver returns the failover record of region, if it is failed over.
func (r *Registry) FailedOver(region string) (events.RegionFailover, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.failedOver[region]
	return f, ok
}

// applyFailover records (f non-nil) or clears the failover of region.
func (r *Registry) applyFailover(region string, f *events.RegionFailover) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f == nil {
		delete(r.failedOver, region)
	} else {
		r.failedOver[region] = *f
	}
}

// FailoverConfig configures a Failover.
type FailoverConfig struct {
	// Cluster places the bucket in this NATS cluster (the global layer's);
	// empty leaves placement to the server (the connection's cluster).
	Cluster string
	// Replicas of the bucket (default 1).
	Replicas int
	// OpTimeout bounds one bucket write (default 5 s).
	OpTimeout time.Duration
}

// FailoverDeps are what a Failover needs.
type FailoverDeps struct {
	NATS     *nats.Conn
	Registry *Registry
	Log      *slog.Logger
}

// Failover keeps the operator's region failovers: it answers
// events.RegionOpsSubject (failover, restore, status), writes the durable
// record in the events.RegionBucket key-value bucket, and mirrors the
// bucket into the Registry, so a restarted global layer reads it back and
// the failed region's heartbeats never undo it.
type Failover struct {
	cfg  FailoverConfig
	deps FailoverDeps
	log  *slog.Logger
	js   jetstream.JetStream

	mu sync.Mutex         // serializes operations
	kv jetstream.KeyValue // guarded by mu; nil until the bucket is ready
}

// ErrRegionOp is wrapped by every refused region operation.
var ErrRegionOp = errors.New("region operation refused")

var regionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// NewFailover checks deps.
func NewFailover(cfg FailoverConfig, deps FailoverDeps) (*Failover, error) {
	if deps.NATS == nil || deps.Registry == nil {
		return nil, errors.New("topology failover: NATS and Registry are required")
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 5 * time.Second
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("topology failover: %w", err)
	}
	return &Failover{cfg: cfg, deps: deps, log: log, js: js}, nil
}

// bucket creates (or opens) the bucket.
func (f *Failover) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	kc := jetstream.KeyValueConfig{
		Bucket: events.RegionBucket, Description: "regions failed over by an operator",
		History: 16, Storage: jetstream.FileStorage, Replicas: f.cfg.Replicas,
	}
	if f.cfg.Cluster != "" {
		kc.Placement = &jetstream.Placement{Cluster: f.cfg.Cluster}
	}
	kv, err := f.js.CreateKeyValue(ctx, kc)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = f.js.KeyValue(ctx, events.RegionBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("topology failover: bucket: %w", err)
	}
	return kv, nil
}

// Run opens the bucket (retrying until JetStream answers), mirrors it into
// the registry and answers operations until ctx ends.
func (f *Failover) Run(ctx context.Context) error {
	var kv jetstream.KeyValue
	for {
		octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
		var err error
		kv, err = f.bucket(octx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil // stopped while waiting for the bucket
		}
		f.log.Warn("region bucket not ready", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped as the watch started
		}
		return fmt.Errorf("topology failover: watch: %w", err)
	}
	defer func() { _ = w.Stop() }()
	// Read the stored state before answering operations.
	for e := range w.Updates() {
		if e == nil {
			break
		}
		f.apply(e)
	}
	f.mu.Lock()
	f.kv = kv
	f.mu.Unlock()
	sub, err := f.deps.NATS.QueueSubscribe(events.RegionOpsSubject, "global", func(m *nats.Msg) {
		reply := f.handle(ctx, m.Data)
		b, _ := json.Marshal(reply)
		_ = m.Respond(b)
	})
	if err != nil {
		return fmt.Errorf("topology failover: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				// The watcher ended under a live context: watch again.
				if ctx.Err() != nil {
					return nil
				}
				if w, err = kv.WatchAll(ctx); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("topology failover: watch: %w", err)
				}
				continue
			}
			if e != nil {
				f.apply(e)
			}
		}
	}
}

func (f *Failover) apply(e jetstream.KeyValueEntry) {
	switch e.Operation() {
	case jetstream.KeyValuePut:
		var rf events.RegionFailover
		if err := json.Unmarshal(e.Value(), &rf); err != nil || rf.Region != e.Key() {
			f.log.Warn("malformed region failover record ignored", "key", e.Key())
			return
		}
		f.deps.Registry.applyFailover(e.Key(), &rf)
		f.log.Info("region failed over", "region", rf.Region, "to", rf.To)
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		f.deps.Registry.applyFailover(e.Key(), nil)
		f.log.Info("region restored", "region", e.Key())
	}
}

func (f *Failover) handle(ctx context.Context, data []byte) events.RegionOpReply {
	var op events.RegionOp
	if err := json.Unmarshal(data, &op); err != nil {
		return events.RegionOpReply{Error: "malformed request: " + err.Error()}
	}
	var err error
	switch op.Op {
	case events.RegionOpFailover:
		err = f.FailoverRegion(ctx, op.Region, op.To)
	case events.RegionOpRestore:
		err = f.Restore(ctx, op.Region)
	case events.RegionOpStatus:
	default:
		err = fmt.Errorf("%w: unknown op %q (want failover, restore or status)", ErrRegionOp, op.Op)
	}
	reply := events.RegionOpReply{Regions: f.deps.Registry.Regions()}
	if err != nil {
		reply.Error = err.Error()
	}
	return reply
}

func (f *Failover) ready() (jetstream.KeyValue, error) {
	if f.kv == nil {
		return nil, fmt.Errorf("%w: region bucket not ready yet", ErrRegionOp)
	}
	return f.kv, nil
}

// FailoverRegion fails region over (to region to, or to every other
// active region when to is empty) and stores the record.
func (f *Failover) FailoverRegion(ctx context.Context, region, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv, err := f.ready()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, rs := range f.deps.Registry.Regions() {
		known[rs.Region] = true
	}
	switch {
	case !regionName.MatchString(region) || !known[region]:
		return fmt.Errorf("%w: unknown region %q", ErrRegionOp, region)
	case to != "" && (!regionName.MatchString(to) || !known[to]):
		return fmt.Errorf("%w: unknown target region %q", ErrRegionOp, to)
	case to == region:
		return fmt.Errorf("%w: cannot fail %s over to itself", ErrRegionOp, region)
	}
	if _, ok := f.deps.Registry.FailedOver(to); ok {
		return fmt.Errorf("%w: target region %s is failed over itself", ErrRegionOp, to)
	}
	rf := events.RegionFailover{Region: region, To: to, At: time.Now().UTC()}
	for _, c := range f.deps.Registry.Cells() {
		if c.Region == region || !c.Joinable() || (to != "" && c.Region != to) {
			continue
		}
		rf.Redirect = append(rf.Redirect, events.CellRef{ID: c.ID, Region: c.Region, API: c.API})
	}
	if len(rf.Redirect) == 0 {
		return fmt.Errorf("%w: no healthy cell outside %s to send players to", ErrRegionOp, region)
	}
	b, err := json.Marshal(rf)
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	if _, err := kv.Put(octx, region, b); err != nil {
		return fmt.Errorf("failover %s: %w", region, err)
	}
	f.deps.Registry.applyFailover(region, &rf)
	return nil
}

// Restore ends the failover of region.
func (f *Failover) Restore(ctx context.Context, region string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv, err := f.ready()
	if err != nil {
		return err
	}
	if _, ok := f.deps.Registry.FailedOver(region); !ok {
		return fmt.Errorf("%w: region %q is not failed over", ErrRegionOp, region)
	}
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	if err := kv.Delete(octx, region); err != nil {
		return fmt.Errorf("restore %s: %w", region, err)
	}
	f.deps.Registry.applyFailover(region, nil)
	return nil
}
