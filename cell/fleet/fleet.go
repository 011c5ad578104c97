package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/internal/supervise"
	"github.com/cellgrid/cellgrid/proto/events"
)

// Config tunes a Fleet. Zero fields take DefaultConfig's values, except
// Min, Max and Buffer where zero is meaningful only as documented.
type Config struct {
	// Cell is the cell id the servers announce themselves under.
	Cell string
	// NATSURL is passed to launched servers. Required when launching.
	NATSURL string
	// Version is what new servers run.
	Version Version
	// Min and Max bound the servers (any state but Shutdown and Unhealthy).
	// Max 0 means 16.
	Min, Max int
	// Buffer is how many Ready (or Scheduled) servers of the current version
	// the autoscaler keeps warm; BufferPercent, when > 0, raises it to that
	// percentage of Allocated servers. Buffer 0 and BufferPercent 0 mean 2.
	Buffer        int
	BufferPercent int
	// HealthTimeout marks a Ready or Allocated server Unhealthy when no
	// heartbeat arrived for this long. Default 3s.
	HealthTimeout time.Duration
	// StartTimeout marks a Scheduled server Unhealthy when it has not become
	// Ready after this long. Default 30s.
	StartTimeout time.Duration
	// AllocateTimeout bounds one allocation request to a DGS. Default 2s.
	AllocateTimeout time.Duration
	// AutoscaleInterval is how often the autoscaler and health check run
	// (and on demand after an allocation missed). Default 250ms.
	AutoscaleInterval time.Duration
	// StopTimeout bounds stopping one server, and all of them when Run ends.
	// Default 10s.
	StopTimeout time.Duration
	// OnStateChange, when set, is called (from the fleet's goroutines, not
	// under its lock) on every state transition. Tests and logs use it.
	OnStateChange func(id string, from, to events.DGSState)
}

// DefaultConfig returns every default in one place.
func DefaultConfig() Config {
	return Config{
		Max: 16, Buffer: 2, HealthTimeout: 3 * time.Second, StartTimeout: 30 * time.Second,
		AllocateTimeout: 2 * time.Second, AutoscaleInterval: 250 * time.Millisecond, StopTimeout: 10 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Max == 0 {
		c.Max = d.Max
	}
	if c.Buffer == 0 && c.BufferPercent == 0 {
		c.Buffer = d.Buffer
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = d.HealthTimeout
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.AllocateTimeout <= 0 {
		c.AllocateTimeout = d.AllocateTimeout
	}
	if c.AutoscaleInterval <= 0 {
		c.AutoscaleInterval = d.AutoscaleInterval
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = d.StopTimeout
	}
	return c
}

// Server is a snapshot of one DGS.
type Server struct {
	ID         string
	State      events.DGSState
	Version    string
	GameAddr   string
	SessionID  string
	LastHealth time.Time
	Handle     Handle // nil for a server this process did not launch
}

type server struct {
	Server
	launchedAt  time.Time
	allocatedAt time.Time
	confirmed   bool // a heartbeat reported our allocation
	stopping    bool // a stop is in flight; the entry goes once it ends
}

// Allocated is the answer of a successful Allocate.
type Allocated struct {
	ServerID string
	GameAddr netip.AddrPort
}

// Fleet is a cell's DGS pool.
type Fleet struct {
	cfg      Config
	nc       *nats.Conn
	launcher Launcher
	log      *slog.Logger
	nudge    chan struct{}
	quit     chan struct{} // closed when Run is ending; set before any launch
	life     supervise.Lifecycle
	m        metrics

	mu      sync.Mutex
	servers map[string]*server // guarded by mu
	version Version            // guarded by mu
	closed  bool               // guarded by mu
	stops   sync.WaitGroup     // in-flight stops; Add under mu while !closed
}

type metrics struct {
	servers   *prometheus.GaugeVec
	allocs    *prometheus.CounterVec
	allocTime prometheus.Histogram
}

// Deps are what a Fleet needs from outside. NATS is required.
type Deps struct {
	// NATS is a connection to the cell's cluster.
	NATS *nats.Conn
	// Launcher starts servers; nil for a fleet that only adopts servers
	// started elsewhere.
	Launcher Launcher
	// Log defaults to slog.Default().
	Log *slog.Logger
	// Metrics receives the fleet's metrics; nil keeps them unregistered.
	Metrics prometheus.Registerer
}

// New returns a Fleet. Nothing runs until Run.
func New(cfg Config, deps Deps) (*Fleet, error) {
	nc, launcher, log, reg := deps.NATS, deps.Launcher, deps.Log, deps.Metrics
	if nc == nil {
		return nil, errors.New("fleet: NATS connection required")
	}
	if cfg.Cell == "" {
		return nil, errors.New("fleet: cell id required")
	}
	cfg = cfg.withDefaults()
	if cfg.Min < 0 || cfg.Max < cfg.Min || cfg.Buffer < 0 {
		return nil, fmt.Errorf("fleet: bad sizes min %d max %d buffer %d", cfg.Min, cfg.Max, cfg.Buffer)
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Fleet{
		cfg: cfg, nc: nc, launcher: launcher, log: log.With("component", "fleet"), // the cell's logger names the cell
		nudge: make(chan struct{}, 1), servers: make(map[string]*server), version: cfg.Version,
		m: metrics{
			servers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cellgrid_fleet_servers", Help: "Game servers by state."}, []string{"state"}),
			allocs:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellgrid_fleet_allocations_total", Help: "Allocation attempts by result."}, []string{"result"}),
			allocTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cellgrid_fleet_allocation_seconds", Help: "Time to allocate a Ready server.",
				Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{f.m.servers, f.m.allocs, f.m.allocTime} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("fleet metrics: %w", err)
			}
		}
	}
	return f, nil
}

// SetVersion makes v the version new servers run and starts a rollout.
func (f *Fleet) SetVersion(v Version) {
	f.mu.Lock()
	f.version = v
	f.mu.Unlock()
	f.poke()
}

// Servers returns a snapshot of every known server, sorted by id.
func (f *Fleet) Servers() []Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Server, 0, len(f.servers))
	for _, s := range f.servers {
		out = append(out, s.Server)
	}
	slices.SortFunc(out, func(a, b Server) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

func (f *Fleet) poke() {
	select {
	case f.nudge <- struct{}{}:
	default:
	}
}

// Allocate hands a Ready server to a match: it moves the server to
// Allocated under the lock (so no other match can pick it), then asks the
// DGS, which must answer OK. A server that fails or refuses the request is
// marked Unhealthy and the next Ready one is tried.
func (f *Fleet) Allocate(ctx context.Context, a events.Allocation) (Allocated, error) {
	start := time.Now()
	body, err := json.Marshal(a)
	if err != nil {
		return Allocated{}, fmt.Errorf("allocate %s: %w", a.SessionID, err)
	}
	for attempt := 0; attempt < 3; attempt++ {
		s, err := f.pickReady(a.SessionID)
		if err != nil {
			f.m.allocs.WithLabelValues("no_server").Inc()
			return Allocated{}, fmt.Errorf("allocate %s: %w", a.SessionID, err)
		}
		addr, perr := netip.ParseAddrPort(s.GameAddr)
		rctx, cancel := context.WithTimeout(ctx, f.cfg.AllocateTimeout)
		msg, rerr := f.nc.RequestWithContext(rctx, events.DGSAllocateSubject(f.cfg.Cell, s.ID), body)
		cancel()
		var reply events.AllocationReply
		if rerr == nil {
			rerr = json.Unmarshal(msg.Data, &reply)
		}
		if rerr == nil && reply.OK && perr == nil {
			f.m.allocs.WithLabelValues("ok").Inc()
			f.m.allocTime.Observe(time.Since(start).Seconds())
			return Allocated{ServerID: s.ID, GameAddr: addr}, nil
		}
		why := fmt.Sprint(rerr)
		if rerr == nil {
			why = "refused: " + reply.Error
			if perr != nil {
				why = "bad game address: " + perr.Error()
			}
		}
		f.log.Warn("allocation failed", "dgs", s.ID, "session", a.SessionID, "why", why)
		f.m.allocs.WithLabelValues("failed").Inc()
		f.setState(s.ID, events.DGSUnhealthy)
		if ctx.Err() != nil {
			return Allocated{}, fmt.Errorf("allocate %s: %w", a.SessionID, ctx.Err())
		}
	}
	return Allocated{}, fmt.Errorf("allocate %s: %w", a.SessionID, ErrNoReadyServer)
}

// pickReady moves one Ready server (current version first) to Allocated.
func (f *Fleet) pickReady(session string) (Server, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return Server{}, ErrClosed
	}
	var best *server
	for _, s := range f.servers {
		if s.State != events.DGSReady || s.stopping || s.GameAddr == "" {
			continue
		}
		cur := s.Version == f.version.Name
		if best == nil || (cur && best.Version != f.version.Name) || (cur == (best.Version == f.version.Name) && s.ID < best.ID) {
			best = s
		}
	}
	if best == nil {
		f.mu.Unlock()
		f.poke()
		return Server{}, ErrNoReadyServer
	}
	best.State, best.SessionID, best.allocatedAt, best.confirmed = events.DGSAllocated, session, time.Now(), false
	snap := best.Server
	f.mu.Unlock()
	f.changed(snap.ID, events.DGSReady, events.DGSAllocated)
	f.poke() // the warm buffer shrank
	return snap, nil
}

func (f *Fleet) changed(id string, from, to events.DGSState) {
	if from == to {
		return
	}
	f.log.Debug("dgs state", "dgs", id, "from", from, "to", to)
	if f.cfg.OnStateChange != nil {
		f.cfg.OnStateChange(id, from, to)
	}
}

// setState moves a server to state (no-op if unknown or unchanged).
func (f *Fleet) setState(id string, state events.DGSState) {
	f.mu.Lock()
	s, ok := f.servers[id]
	if !ok || s.State == state {
		f.mu.Unlock()
		return
	}
	from := s.State
	s.State = state
	f.mu.Unlock()
	f.changed(id, from, state)
	f.poke()
}

// Run subscribes to heartbeats and runs the health check and autoscaler
// until ctx ends; then it stops every server it launched and returns once
// they and its goroutines are gone.
func (f *Fleet) Run(ctx context.Context) error {
	ctx, done := f.life.Start(ctx)
	defer done()
	if f.life.Closed() {
		return ErrClosed
	}
	health := make(chan *nats.Msg, 4096)
	sub, err := f.nc.ChanSubscribe(events.DGSHealthSubject(f.cfg.Cell), health)
	if err != nil {
		return fmt.Errorf("fleet: subscribe health: %w", err)
	}
	exits := make(chan string, 64)
	f.quit = make(chan struct{})
	var watchers sync.WaitGroup
	stopCtx, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAll()
	t := time.NewTicker(f.cfg.AutoscaleInterval)
	defer t.Stop()
	f.reconcile(ctx, stopCtx, exits, &watchers)
	for {
		select {
		case <-ctx.Done():
			_ = sub.Unsubscribe()
			f.shutdownAll(exits)
			close(f.quit)
			watchers.Wait()
			return nil
		case m := <-health:
			f.onHealth(m.Data)
		case id := <-exits:
			f.onExit(id)
		case <-f.nudge:
			f.reconcile(ctx, stopCtx, exits, &watchers)
		case <-t.C:
			f.reconcile(ctx, stopCtx, exits, &watchers)
		}
	}
}

// Close stops a running Run (which stops every server it launched) and
// waits for it; a later Run returns ErrClosed. Safe to call twice.
func (f *Fleet) Close() error {
	f.life.Close()
	return nil
}

func (f *Fleet) onHealth(data []byte) {
	var h events.DGSHealth
	if err := json.Unmarshal(data, &h); err != nil || h.ID == "" || h.Cell != f.cfg.Cell {
		return
	}
	now := time.Now()
	f.mu.Lock()
	s, ok := f.servers[h.ID]
	if !ok {
		if h.State == events.DGSShutdown || f.closed {
			f.mu.Unlock()
			return
		}
		// A server this process did not launch (another cell process, or a
		// previous run): adopt it so it is allocated and health-checked.
		s = &server{Server: Server{ID: h.ID, State: events.DGSScheduled}, launchedAt: now}
		f.servers[h.ID] = s
	}
	s.LastHealth, s.GameAddr, s.Version = now, h.GameAddr, h.Version
	from, to := s.State, s.State
	switch {
	case s.State == events.DGSShutdown || s.State == events.DGSUnhealthy:
		// terminal here; the server is on its way out
	case h.State == events.DGSReady && s.State == events.DGSAllocated:
		// Back to Ready after a match, unless this heartbeat left before
		// our allocation reached the server: trust it once a heartbeat
		// confirmed the allocation, or after HealthTimeout.
		if s.confirmed || now.Sub(s.allocatedAt) > f.cfg.HealthTimeout {
			to, s.SessionID = events.DGSReady, ""
		}
	case h.State == events.DGSReady, h.State == events.DGSAllocated, h.State == events.DGSUnhealthy, h.State == events.DGSShutdown:
		to = h.State
		if h.State == events.DGSAllocated && h.SessionID != "" {
			s.confirmed = s.confirmed || h.SessionID == s.SessionID
			s.SessionID = h.SessionID
		}
	}
	s.State = to
	f.mu.Unlock()
	f.changed(h.ID, from, to)
}

func (f *Fleet) onExit(id string) {
	f.mu.Lock()
	s, ok := f.servers[id]
	if !ok {
		f.mu.Unlock()
		return
	}
	from := s.State
	if !s.stopping && s.State != events.DGSShutdown {
		s.State = events.DGSUnhealthy // died on its own
	}
	to := s.State
	f.mu.Unlock()
	f.changed(id, from, to)
	f.poke()
}

// reconcile runs one pass of health checks, cleanup and autoscaling.
func (f *Fleet) reconcile(ctx, stopCtx context.Context, exits chan<- string, watchers *sync.WaitGroup) {
	now := time.Now()
	type change struct {
		id       string
		from, to events.DGSState
	}
	var changes []change
	var toStop []*server
	f.mu.Lock()
	v := f.version
	var ready, scheduled, allocated, total, readyOld int
	for _, s := range f.servers {
		if s.stopping {
			continue
		}
		switch s.State {
		case events.DGSScheduled:
			if now.Sub(s.launchedAt) > f.cfg.StartTimeout {
				changes = append(changes, change{s.ID, s.State, events.DGSUnhealthy})
				s.State = events.DGSUnhealthy
			}
		case events.DGSReady, events.DGSAllocated:
			if now.Sub(s.LastHealth) > f.cfg.HealthTimeout {
				changes = append(changes, change{s.ID, s.State, events.DGSUnhealthy})
				s.State = events.DGSUnhealthy
			}
		}
		switch s.State {
		case events.DGSUnhealthy, events.DGSShutdown:
			toStop = append(toStop, s)
			continue
		case events.DGSScheduled:
			scheduled++
		case events.DGSReady:
			if s.Version == v.Name {
				ready++
			} else {
				readyOld++
			}
		case events.DGSAllocated:
			allocated++
		}
		total++
	}
	buffer := f.cfg.Buffer
	if f.cfg.BufferPercent > 0 {
		buffer = max(buffer, (allocated*f.cfg.BufferPercent+99)/100)
	}
	launch := buffer - ready - scheduled
	launch = max(launch, f.cfg.Min-total)
	launch = min(launch, f.cfg.Max-total)
	// Rollout: once the new version's buffer is warm, retire old Ready ones.
	// Scale-in: retire surplus Ready servers above the buffer, not below Min.
	surplus := 0
	if launch < 0 {
		surplus = min(-launch, total-f.cfg.Min)
	}
	for _, s := range f.servers {
		if s.stopping || s.State != events.DGSReady {
			continue
		}
		old := s.Version != v.Name
		if (old && ready >= buffer) || (!old && surplus > 0 && readyOld == 0) {
			if !old {
				surplus--
			}
			changes = append(changes, change{s.ID, s.State, events.DGSShutdown})
			s.State = events.DGSShutdown
			toStop = append(toStop, s)
		}
	}
	for _, s := range toStop {
		s.stopping = true
	}
	closed := f.closed
	f.mu.Unlock()
	for _, c := range changes {
		f.changed(c.id, c.from, c.to)
	}
	for _, s := range toStop {
		f.stop(stopCtx, s.Server)
	}
	if closed || f.launcher == nil {
		f.updateGauges()
		return
	}
	for range max(launch, 0) {
		if ctx.Err() != nil {
			break
		}
		if err := f.launch(ctx, v, exits, watchers); err != nil {
			f.log.Error("launch failed", "err", err)
			break
		}
	}
	f.updateGauges()
}

func (f *Fleet) launch(ctx context.Context, v Version, exits chan<- string, watchers *sync.WaitGroup) error {
	id := f.cfg.Cell + "-" + uuid.NewString()[:8]
	h, err := f.launcher.Start(ctx, LaunchSpec{ID: id, Cell: f.cfg.Cell, NATSURL: f.cfg.NATSURL, Version: v})
	if err != nil {
		return err
	}
	f.mu.Lock()
	if s, ok := f.servers[id]; ok { // heartbeat beat us to it
		s.Handle = h
	} else {
		f.servers[id] = &server{Server: Server{ID: id, State: events.DGSScheduled, Version: v.Name, Handle: h}, launchedAt: time.Now()}
	}
	f.mu.Unlock()
	f.changed(id, "", events.DGSScheduled)
	if done := h.Exited(); done != nil {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			<-done
			select {
			case exits <- id:
			case <-f.quit:
			}
		}()
	}
	return nil
}

// stop asks a server to shut down and forgets it once it is gone. The stop
// runs in the background, tracked by f.stops.
func (f *Fleet) stop(ctx context.Context, s Server) {
	_ = f.nc.Publish(events.DGSShutdownSubject(f.cfg.Cell, s.ID), nil)
	f.stops.Add(1)
	go func() {
		defer f.stops.Done()
		if s.Handle != nil && f.launcher != nil {
			sctx, cancel := context.WithTimeout(ctx, f.cfg.StopTimeout)
			if err := f.launcher.Stop(sctx, s.Handle); err != nil {
				f.log.Warn("stop failed", "dgs", s.ID, "err", err)
			}
			cancel()
		}
		f.mu.Lock()
		delete(f.servers, s.ID)
		f.mu.Unlock()
	}()
}

// shutdownAll stops every server this process launched and waits, while
// draining exit notices so the watchers can end.
func (f *Fleet) shutdownAll(exits <-chan string) {
	f.mu.Lock()
	f.closed = true
	var toStop []Server
	for _, s := range f.servers {
		if !s.stopping && s.Handle != nil {
			s.stopping = true
			toStop = append(toStop, s.Server)
		}
	}
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.StopTimeout)
	defer cancel()
	for _, s := range toStop {
		f.stop(ctx, s)
	}
	done := make(chan struct{})
	go func() { f.stops.Wait(); close(done) }()
	for {
		select {
		case <-exits:
		case <-done:
			for {
				select {
				case <-exits:
				default:
					return
				}
			}
		}
	}
}

func (f *Fleet) updateGauges() {
	counts := make(map[events.DGSState]int, len(events.DGSStates))
	for _, st := range events.DGSStates {
		counts[st] = 0
	}
	f.mu.Lock()
	for _, s := range f.servers {
		counts[s.State]++
	}
	f.mu.Unlock()
	for st, n := range counts {
		f.m.servers.WithLabelValues(string(st)).Set(float64(n))
	}
}

// Release shuts down an allocated server whose session could not start
// (it will never get players); the autoscaler replaces it.
func (f *Fleet) Release(id string) {
	f.setState(id, events.DGSShutdown)
}
