package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Path is what one direction of a link does to datagrams.
type Path struct {
	// Delay is the one-way delay every datagram is held for.
	Delay time.Duration
	// Jitter adds a uniform random delay in [0, Jitter) per datagram.
	// Datagrams still leave in order unless Reorder picks them.
	Jitter time.Duration
	// Loss is the probability (0..1) that a datagram is dropped.
	Loss float64
	// Reorder is the probability (0..1) that a datagram is held for an
	// extra ReorderDelay, so later datagrams overtake it.
	Reorder float64
	// ReorderDelay is the extra hold of a reordered datagram; 0 means
	// Delay/2 + 1 ms.
	ReorderDelay time.Duration
	// Blackhole drops everything.
	Blackhole bool
}

func (p Path) validate() error {
	if p.Delay < 0 || p.Jitter < 0 || p.ReorderDelay < 0 {
		return errors.New("negative duration")
	}
	if p.Loss < 0 || p.Loss > 1 || p.Reorder < 0 || p.Reorder > 1 {
		return errors.New("probability outside 0..1")
	}
	return nil
}

// Config configures a Link. Zero fields take DefaultConfig's values.
type Config struct {
	// Listen is the client-facing UDP address when Deps.Conn is nil.
	// Default 127.0.0.1:0 (read the chosen one back with Addr).
	Listen string
	// Upstream is the host:port every client is forwarded to (required).
	Upstream string
	// Up is the client→upstream direction, Down the upstream→client one.
	Up, Down Path
	// Seed seeds the loss/jitter/reorder randomness; 0 picks a random seed.
	Seed uint64
	// IdleTimeout closes a client's upstream socket after this long without
	// traffic either way. Default 2 minutes.
	IdleTimeout time.Duration
	// MaxFlows bounds the client addresses served at once; datagrams from
	// further clients are dropped. Default 4096.
	MaxFlows int
}

// DefaultConfig returns every default.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:0", IdleTimeout: 2 * time.Minute, MaxFlows: 4096}
}

// Deps are what a Link takes from outside.
type Deps struct {
	// Conn is the client-facing socket; nil makes the Link listen on
	// Config.Listen. The Link closes it on Close either way.
	Conn net.PacketConn
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Stats counts datagrams per direction.
type Stats struct {
	UpSent, UpDropped, DownSent, DownDropped uint64
}

// Link is one emulated network path between clients and an upstream.
type Link struct {
	cfg      Config
	conn     net.PacketConn
	upstream *net.UDPAddr
	log      *slog.Logger
	sched    *scheduler

	mu    sync.Mutex
	up    Path             // guarded by mu
	down  Path             // guarded by mu
	rng   *rand.Rand       // guarded by mu
	flows map[string]*flow // guarded by mu: by client address
	wg    sync.WaitGroup   // flow readers
	stats [4]atomic.Uint64 // UpSent, UpDropped, DownSent, DownDropped
	done  chan struct{}    // closed by Close
	once  sync.Once
}

type flow struct {
	client net.Addr
	conn   *net.UDPConn // connected to upstream
	last   atomic.Int64 // unix nanos of the last datagram either way
}

// New checks cfg and binds the client-facing socket (unless given one).
func New(cfg Config, deps Deps) (*Link, error) {
	d := DefaultConfig()
	if cfg.Listen == "" {
		cfg.Listen = d.Listen
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = d.IdleTimeout
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = d.MaxFlows
	}
	if err := cfg.Up.validate(); err != nil {
		return nil, fmt.Errorf("wan link: up path: %w", err)
	}
	if err := cfg.Down.validate(); err != nil {
		return nil, fmt.Errorf("wan link: down path: %w", err)
	}
	if cfg.Upstream == "" {
		return nil, errors.New("wan link: upstream required")
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("wan link: upstream: %w", err)
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	conn := deps.Conn
	if conn == nil {
		if conn, err = net.ListenPacket("udp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("wan link: listen: %w", err)
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Link{
		cfg: cfg, conn: conn, upstream: ua, log: log,
		sched: newScheduler(),
		up:    cfg.Up, down: cfg.Down,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		flows: map[string]*flow{},
		done:  make(chan struct{}),
	}, nil
}

// Addr is the client-facing address: what clients (and the topology) use
// instead of the upstream's.
func (l *Link) Addr() string { return l.conn.LocalAddr().String() }

// Upstream is the address datagrams are forwarded to.
func (l *Link) Upstream() string { return l.upstream.String() }

// Paths returns the current up and down paths.
func (l *Link) Paths() (up, down Path) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up, l.down
}

// SetPaths changes both directions at once (e.g. to blackhole a region);
// datagrams already in flight keep the delay they were given.
func (l *Link) SetPaths(up, down Path) error {
	if err := up.validate(); err != nil {
		return fmt.Errorf("wan link: up path: %w", err)
	}
	if err := down.validate(); err != nil {
		return fmt.Errorf("wan link: down path: %w", err)
	}
	l.mu.Lock()
	l.up, l.down = up, down
	l.mu.Unlock()
	return nil
}

// Stats returns the datagram counters.
func (l *Link) Stats() Stats {
	return Stats{l.stats[0].Load(), l.stats[1].Load(), l.stats[2].Load(), l.stats[3].Load()}
}

// Run forwards datagrams until ctx ends or Close is called; it returns once
// every goroutine it started has ended and closes the link.
func (l *Link) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
		case <-l.done:
		}
		_ = l.Close()
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.sched.run(l.done) }()
	go func() { defer wg.Done(); l.janitor() }()
	err := l.readClients()
	cancel()
	_ = l.Close()
	wg.Wait()
	l.wg.Wait()
	select {
	case <-l.done:
		return nil
	default:
		return err
	}
}

// Close stops the link and closes its sockets. Safe twice.
func (l *Link) Close() error {
	l.once.Do(func() {
		close(l.done)
		_ = l.conn.Close()
		l.mu.Lock()
		for _, f := range l.flows {
			_ = f.conn.Close()
		}
		l.mu.Unlock()
	})
	return nil
}

func (l *Link) readClients() error {
	buf := make([]byte, 64*1024)
	for {
		n, from, err := l.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-l.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("wan link: read: %w", err)
		}
		f, err := l.flowFor(from)
		if err != nil {
			l.stats[1].Add(1)
			continue
		}
		f.last.Store(time.Now().UnixNano())
		data := append([]byte(nil), buf[:n]...)
		l.send(true, data, func(b []byte) { _, _ = f.conn.Write(b) })
	}
}

// flowFor returns the client's flow, opening its upstream socket (and the
// goroutine reading it) on first use.
func (l *Link) flowFor(client net.Addr) (*flow, error) {
	key := client.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.flows[key]; ok {
		return f, nil
	}
	select {
	case <-l.done:
		return nil, net.ErrClosed
	default:
	}
	if len(l.flows) >= l.cfg.MaxFlows {
		return nil, errors.New("too many flows")
	}
	c, err := net.DialUDP("udp", nil, l.upstream)
	if err != nil {
		return nil, err
	}
	f := &flow{client: client, conn: c}
	l.flows[key] = f
	l.wg.Add(1)
	go l.readUpstream(f)
	return f, nil
}

func (l *Link) readUpstream(f *flow) {
	defer l.wg.Done()
	buf := make([]byte, 64*1024)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			return // closed by Close or the janitor; ICMP errors end the flow too
		}
		f.last.Store(time.Now().UnixNano())
		data := append([]byte(nil), buf[:n]...)
		l.send(false, data, func(b []byte) { _, _ = l.conn.WriteTo(b, f.client) })
	}
}

// send applies the direction's path to one datagram and schedules it.
func (l *Link) send(up bool, data []byte, deliver func([]byte)) {
	sent, dropped := &l.stats[2], &l.stats[3]
	if up {
		sent, dropped = &l.stats[0], &l.stats[1]
	}
	l.mu.Lock()
	p := l.down
	if up {
		p = l.up
	}
	drop := p.Blackhole || (p.Loss > 0 && l.rng.Float64() < p.Loss)
	var hold time.Duration
	reorder := false
	if !drop {
		hold = p.Delay
		if p.Jitter > 0 {
			hold += time.Duration(l.rng.Int64N(int64(p.Jitter)))
		}
		if p.Reorder > 0 && l.rng.Float64() < p.Reorder {
			reorder = true
			extra := p.ReorderDelay
			if extra == 0 {
				extra = p.Delay/2 + time.Millisecond
			}
			hold += extra
		}
	}
	l.mu.Unlock()
	if drop {
		dropped.Add(1)
		return
	}
	sent.Add(1)
	l.sched.add(up, time.Now().Add(hold), reorder, func() { deliver(data) })
}

// janitor closes flows idle for longer than IdleTimeout.
func (l *Link) janitor() {
	t := time.NewTicker(max(l.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case now := <-t.C:
			cutoff := now.Add(-l.cfg.IdleTimeout).UnixNano()
			l.mu.Lock()
			for k, f := range l.flows {
				if f.last.Load() < cutoff {
					_ = f.conn.Close()
					delete(l.flows, k)
				}
			}
			l.mu.Unlock()
		}
	}
}
