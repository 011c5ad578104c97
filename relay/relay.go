package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/time/rate"

	"github.com/cellgrid/cellgrid/internal/sourcelimit"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/packet"
)

// Relay forwards datagrams between bound clients and their DGS. Create it
// with New, start it with Run, stop it by cancelling Run's context or with
// Close.
type Relay struct {
	cfg      Config
	conn     net.PacketConn
	udp      *net.UDPConn     // conn as a UDPConn, nil otherwise
	batch    *ipv4.PacketConn // non-nil when reads are batched
	verifier *connecttoken.Verifier
	sessions SessionChecker
	replay   ReplayGuard
	log      *slog.Logger
	m        *metrics
	start    time.Time // monotonic base of binding.lastActive

	hellos  chan helloReq // read loop → handshake workers; bounded
	readErr chan error    // read loop's fatal error, buffered 1

	// Beacon limits, touched only by the read loop.
	pingGlobal  *rate.Limiter
	pingBuckets []pingBucket
	pingSeed    maphash.Seed
	pongBuf     []byte

	// HELLO limits per source, touched only by the read loop.
	helloAddr *sourcelimit.Limiter[netip.AddrPort]
	helloIP   *sourcelimit.Limiter[netip.Addr]

	cookieKey [32]byte // HMAC key of CHALLENGE cookies, random per Relay

	ctx       context.Context // cancelled by Close; bounds store calls
	cancel    context.CancelFunc
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	running   atomic.Bool
	wg        sync.WaitGroup // every goroutine the Relay starts

	// mu guards the fields below. Lock order: mu, then nothing (binding
	// fields are atomics; sockets are closed outside mu).
	mu      sync.RWMutex
	closing bool                        // no new goroutines once set
	byAddr  map[netip.AddrPort]*binding // current client address → binding
	byKey   map[bindingKey]*binding     // (session, player) → binding
}

type helloReq struct {
	from netip.AddrPort
	n    int // HelloLen or HelloCookieLen
	pkt  [packet.MaxLen]byte
}

type pingBucket struct {
	tokens float64
	last   int64 // Unix nanoseconds
}

// New checks cfg and deps and returns a Relay that owns deps.Conn. Nothing
// runs until Run.
func New(cfg Config, deps Deps) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	switch {
	case deps.Conn == nil:
		return nil, errors.New("relay: Deps.Conn is nil")
	case deps.Verifier == nil:
		return nil, errors.New("relay: Deps.Verifier is nil")
	case deps.Sessions == nil:
		return nil, errors.New("relay: Deps.Sessions is nil")
	case deps.Replay == nil:
		return nil, errors.New("relay: Deps.Replay is nil")
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		cfg:         cfg,
		conn:        deps.Conn,
		verifier:    deps.Verifier,
		sessions:    deps.Sessions,
		replay:      deps.Replay,
		log:         log.With("component", "relay"),
		m:           m,
		start:       time.Now(),
		hellos:      make(chan helloReq, cfg.HandshakeQueue),
		readErr:     make(chan error, 1),
		pingGlobal:  rate.NewLimiter(rate.Limit(cfg.PingGlobal), int(4*cfg.PingGlobal)+1),
		pingBuckets: make([]pingBucket, cfg.PingBuckets),
		pingSeed:    maphash.MakeSeed(),
		pongBuf:     make([]byte, 0, packet.PongSeqLen),
		helloAddr:   sourcelimit.New[netip.AddrPort](cfg.HelloPerAddr, int(2*cfg.HelloPerAddr), cfg.HelloSources),
		helloIP:     sourcelimit.New[netip.Addr](cfg.HelloPerIP, int(2*cfg.HelloPerIP), cfg.HelloSources),
		ctx:         ctx,
		cancel:      cancel,
		done:        make(chan struct{}),
		byAddr:      make(map[netip.AddrPort]*binding),
		byKey:       make(map[bindingKey]*binding),
	}
	if _, err := rand.Read(r.cookieKey[:]); err != nil {
		return nil, fmt.Errorf("relay: cookie key: %w", err)
	}
	if uc, ok := deps.Conn.(*net.UDPConn); ok {
		r.udp = uc
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil && cfg.ReadBatch > 1 {
			r.batch = ipv4.NewPacketConn(uc)
		}
	}
	return r, nil
}

// Addr returns the public socket's address (the chosen port when it was
// opened on port 0).
func (r *Relay) Addr() net.Addr { return r.conn.LocalAddr() }

// Run serves until ctx is cancelled or Close is called, then closes the
// public socket and every upstream socket and returns once every goroutine
// it started has ended. It returns nil on such a stop, ErrClosed if the Relay
// was closed or already running, or the public socket's read error.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrClosed
	}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return ErrClosed
	}
	r.wg.Add(2 + r.cfg.HandshakeWorkers)
	r.mu.Unlock()

	go r.readLoop()
	go r.janitor()
	for range r.cfg.HandshakeWorkers {
		go r.handshakeWorker()
	}
	var err error
	select {
	case <-ctx.Done():
	case <-r.done:
	case err = <-r.readErr:
		err = fmt.Errorf("relay read %s: %w", r.conn.LocalAddr(), err)
	}
	r.Close()
	return err
}

// Close stops the Relay: it closes the public socket and all bindings and
// waits for the Relay's goroutines. Safe to call more than once and
// concurrently with Run.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closing = true
		bs := make([]*binding, 0, len(r.byKey))
		for _, b := range r.byKey {
			bs = append(bs, b)
		}
		r.mu.Unlock()
		close(r.done)
		r.cancel()
		r.conn.Close()
		for _, b := range bs {
			r.closeBinding(b)
		}
	})
	r.wg.Wait()
	return nil
}

func (r *Relay) isClosing() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// nowNanos is the monotonic clock bindings record activity with.
func (r *Relay) nowNanos() int64 { return int64(time.Since(r.start)) }

func (r *Relay) drop(reason string) { r.m.drop[reason].Inc() }

// writeTo sends b to a client address through the public socket.
func (r *Relay) writeTo(b []byte, to netip.AddrPort) error {
	if r.udp != nil {
		_, err := r.udp.WriteToUDPAddrPort(b, to)
		return err
	}
	_, err := r.conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// readLoop is the only reader of the public socket.
func (r *Relay) readLoop() {
	defer r.wg.Done()
	var err error
	if r.batch != nil {
		err = r.readBatches()
	} else {
		err = r.readSingles()
	}
	if err != nil && !r.isClosing() {
		r.readErr <- err
	}
}

func (r *Relay) readSingles() error {
	buf := make([]byte, r.cfg.MaxDatagram+1)
	for {
		var (
			n    int
			from netip.AddrPort
			err  error
		)
		if r.udp != nil {
			n, from, err = r.udp.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = r.conn.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				from = ua.AddrPort()
			}
		}
		if err != nil {
			if r.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !from.IsValid() {
			continue
		}
		r.handle(buf[:n], from, time.Now())
	}
}

func (r *Relay) readBatches() error {
	msgs := make([]ipv4.Message, r.cfg.ReadBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, r.cfg.MaxDatagram+1)}
	}
	for {
		n, err := r.batch.ReadBatch(msgs, 0)
		if err != nil {
			if r.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		now := time.Now()
		for i := range n {
			m := &msgs[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			ap := ua.AddrPort()
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			r.handle(m.Buffers[0][:m.N], ap, now)
		}
	}
}

// handle routes one datagram from the public socket. Non-control datagrams
// from unbound addresses are dropped before any allocation.
func (r *Relay) handle(b []byte, from netip.AddrPort, now time.Time) {
	if len(b) > r.cfg.MaxDatagram {
		r.drop(dropTooLarge)
		return
	}
	if packet.IsControl(b) {
		r.handleControl(b, from, now)
		return
	}
	r.mu.RLock()
	bnd := r.byAddr[from]
	r.mu.RUnlock()
	if bnd == nil {
		r.drop(dropUnbound)
		return
	}
	if !bnd.allow(now, len(b)) {
		r.drop(dropRateLimited)
		return
	}
	bnd.lastActive.Store(r.nowNanos())
	if _, err := bnd.up.Write(b); err != nil {
		r.drop(dropUpstreamWrite)
		return
	}
	r.m.upPackets.Inc()
	r.m.upBytes.Add(float64(len(b)))
}

func (r *Relay) handleControl(b []byte, from netip.AddrPort, now time.Time) {
	c, err := packet.ParseControl(b)
	if err != nil {
		r.drop(dropMalformed)
		return
	}
	switch c.Type {
	case packet.TypePing:
		if !r.allowPing(from, now) {
			r.drop(dropPingLimited)
			return
		}
		r.pongBuf = packet.AppendPong(r.pongBuf[:0], c.Ping, uint64(now.UnixNano()))
		if err := r.writeTo(r.pongBuf, from); err != nil {
			r.drop(dropClientWrite)
			return
		}
		r.m.pongs.Inc()
	case packet.TypeHello, packet.TypeHelloCookie:
		r.handleHello(b, c.Token, from, now)
	default:
		r.drop(dropUnexpected)
	}
}

// allowPing applies the per-source (hashed buckets) and global beacon
// limits. Read loop only.
func (r *Relay) allowPing(from netip.AddrPort, now time.Time) bool {
	bk := &r.pingBuckets[maphash.Comparable(r.pingSeed, from)%uint64(len(r.pingBuckets))]
	ns := now.UnixNano()
	burst := 4 * r.cfg.PingPerSource
	bk.tokens = min(burst, bk.tokens+float64(ns-bk.last)/1e9*r.cfg.PingPerSource)
	bk.last = ns
	if bk.tokens < 1 || !r.pingGlobal.AllowN(now, 1) {
		return false
	}
	bk.tokens--
	return true
}
