package gameconn

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"

	"github.com/cellgrid/cellgrid/proto/packet"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// TuneKCP applies the cellgrid KCP settings (wire.KCP*) to s; the arena
// server applies the same ones.
func TuneKCP(s *kcp.UDPSession) {
	s.SetNoDelay(wire.KCPNoDelay, wire.KCPInterval, wire.KCPResend, wire.KCPNoCongestion)
	s.SetWindowSize(wire.KCPSendWnd, wire.KCPRecvWnd)
	s.SetWriteDelay(false)
	s.SetACKNoDelay(false)
}

// ClientConfig configures Dial. Zero values are documented per field.
type ClientConfig struct {
	// Addr is where datagrams go: the relay (production) or the DGS game
	// address directly (tests). Required.
	Addr net.Addr
	// Conn is the socket to use; Dial takes it over and Close closes it.
	// Nil opens a fresh UDP socket.
	Conn net.PacketConn
	// Token is the connect token from matchmaking. Required.
	Token []byte
	// HelloInterval is how often HELLO is re-sent until ACCEPT (or REFUSE)
	// arrives. Zero means 200 ms.
	HelloInterval time.Duration
	// SnapshotBuffer is the capacity of the Snapshots channel; when the
	// consumer lags the oldest snapshot is dropped. Zero means 32.
	SnapshotBuffer int
	// WriteTimeout bounds SendInput when the KCP window is full. Zero
	// means 2 s.
	WriteTimeout time.Duration
	// RebindAfter: once connected, when nothing has arrived for this long
	// the client re-sends HELLO every HelloInterval until something does.
	// A NAT that rebinds the client's address mid-match makes the relay
	// drop its datagrams as unbound, and only a HELLO from the new address
	// moves the binding. Zero means 500 ms; negative turns it off.
	RebindAfter time.Duration
}

// Client is one player's connection to a game server.
type Client struct {
	cfg    ClientConfig
	conn   *controlFilter
	sess   *kcp.UDPSession
	accept wire.Accept
	hello  []byte        // the HELLO datagram, re-sent to (re)bind
	stop   chan struct{} // closed by Close: ends keepBound

	snapshots chan wire.Snapshot
	done      chan struct{} // closed when the reader ends
	wg        sync.WaitGroup

	writeMu sync.Mutex // serialises frames on the stream
	wbuf    []byte     // guarded by writeMu

	closeOnce sync.Once
	dropped   atomic.Int64

	mu  sync.Mutex
	end *wire.End // guarded by mu
	err error     // guarded by mu: why the reader ended
}

// Dial connects to a game server (through the relay or directly): HELLO,
// KCP session, JOIN, then waits for ACCEPT until ctx is done. On REFUSE it
// returns a *RefusedError, on a relay REJECT a *RelayRejectError.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if cfg.Addr == nil || len(cfg.Token) == 0 {
		return nil, errors.New("wire dial: Addr and Token are required")
	}
	if cfg.HelloInterval <= 0 {
		cfg.HelloInterval = 200 * time.Millisecond
	}
	if cfg.SnapshotBuffer <= 0 {
		cfg.SnapshotBuffer = 32
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 2 * time.Second
	}
	if cfg.RebindAfter == 0 {
		cfg.RebindAfter = 500 * time.Millisecond
	}
	pc := cfg.Conn
	if pc == nil {
		var err error
		network := "udp4"
		if ua, ok := cfg.Addr.(*net.UDPAddr); ok && ua.IP.To4() == nil {
			network = "udp6"
		}
		if pc, err = net.ListenPacket(network, ""); err != nil {
			return nil, fmt.Errorf("wire dial: %w", err)
		}
	}
	filter := newControlFilter(pc, cfg.Addr, cfg.Token)
	hello := packet.AppendHello(nil, cfg.Token)
	if _, err := pc.WriteTo(hello, cfg.Addr); err != nil {
		pc.Close()
		return nil, fmt.Errorf("wire dial: hello: %w", err)
	}
	sess, err := kcp.NewConn3(conversationID(), cfg.Addr, nil, 0, 0, filter)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("wire dial: kcp: %w", err)
	}
	TuneKCP(sess)
	c := &Client{
		cfg:       cfg,
		conn:      filter,
		sess:      sess,
		hello:     hello,
		snapshots: make(chan wire.Snapshot, cfg.SnapshotBuffer),
		done:      make(chan struct{}),
		stop:      make(chan struct{}),
	}
	if err := c.write(wire.Join{Token: cfg.Token}); err != nil {
		c.Close()
		return nil, fmt.Errorf("wire dial: join: %w", err)
	}
	accepted := make(chan wire.Accept, 1)
	c.wg.Add(1)
	go c.readLoop(accepted)

	t := time.NewTicker(cfg.HelloInterval)
	defer t.Stop()
	for {
		select {
		case a := <-accepted:
			c.accept = a
			if cfg.RebindAfter > 0 {
				c.wg.Add(1)
				go c.keepBound()
			}
			return c, nil
		case r := <-filter.rejects:
			c.Close()
			return nil, &RelayRejectError{Reason: r}
		case <-c.done:
			err := c.Err()
			c.Close()
			return nil, err
		case <-t.C:
			if _, err := filter.WriteTo(hello, cfg.Addr); err != nil {
				c.Close()
				return nil, fmt.Errorf("wire dial: hello: %w", err)
			}
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("wire dial: %w", ctx.Err())
		}
	}
}

// conversationID picks a random KCP conversation id other than
// packet.ReservedConv (which would read as a relay control packet) and 0.
func conversationID() uint32 {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		if id := binary.LittleEndian.Uint32(b[:]); id != packet.ReservedConv && id != 0 {
			return id
		}
	}
}

// Accept returns the server's ACCEPT: this player's slot, the roster, the
// arena and its limits.
func (c *Client) Accept() wire.Accept { return c.accept }

// Snapshots delivers snapshots in order; it is closed when the stream ends
// (after End, on error, or on Close). If the consumer lags, the oldest
// buffered snapshot is dropped (see Dropped).
func (c *Client) Snapshots() <-chan wire.Snapshot { return c.snapshots }

// Done is closed when the stream has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// End returns the END message once the match is over.
func (c *Client) End() (wire.End, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.end == nil {
		return wire.End{}, false
	}
	return *c.end, true
}

// Err returns why the stream ended (nil while it runs or after END).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Dropped counts snapshots dropped because the consumer lagged.
func (c *Client) Dropped() int64 { return c.dropped.Load() }

// SendInput sends one INPUT. It blocks at most WriteTimeout when the KCP
// send window is full.
func (c *Client) SendInput(in wire.Input) error { return c.write(in) }

// Send sends any message (tests use it to send malformed or extra frames).
func (c *Client) Send(m wire.Message) error { return c.write(m) }

func (c *Client) write(m wire.Message) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.wbuf = wire.AppendFrame(c.wbuf[:0], m)
	if err := c.sess.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		return err
	}
	if _, err := c.sess.Write(c.wbuf); err != nil {
		return fmt.Errorf("wire send %s: %w", m.Type(), err)
	}
	return nil
}

// Rebind moves the client to a new local socket mid-match (a new network
// interface, or a test standing in for a NAT that changed the client's
// address): it sends HELLO from conn so the relay moves the binding, and
// carries the KCP session over. The old socket is closed; the client owns
// conn from now on.
func (c *Client) Rebind(conn net.PacketConn) error {
	if err := c.conn.swap(conn); err != nil {
		return err
	}
	if _, err := c.conn.WriteTo(c.hello, c.cfg.Addr); err != nil {
		return fmt.Errorf("gameconn rebind: hello: %w", err)
	}
	return nil
}

// keepBound re-sends HELLO while nothing arrives (see RebindAfter).
func (c *Client) keepBound() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.HelloInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.done:
			return
		case now := <-t.C:
			if now.Sub(time.Unix(0, c.conn.lastRecv.Load())) >= c.cfg.RebindAfter {
				_, _ = c.conn.WriteTo(c.hello, c.cfg.Addr)
			}
		}
	}
}

// Close ends the session and closes the socket. Safe to call twice.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.sess.Close()
		c.conn.Close() // ends kcp-go's read loop
		c.wg.Wait()
	})
	return nil
}

func (c *Client) finish(err error) {
	c.mu.Lock()
	if c.err == nil && c.end == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *Client) readLoop(accepted chan<- wire.Accept) {
	defer c.wg.Done()
	defer close(c.done)
	defer close(c.snapshots)
	r := bufio.NewReaderSize(c.sess, 16<<10)
	buf := make([]byte, wire.MaxFrame)
	for {
		frame, err := wire.ReadFrame(r, buf)
		if err != nil {
			c.finish(fmt.Errorf("wire read: %w", err))
			return
		}
		m, err := wire.Decode(frame)
		if err != nil {
			c.finish(err)
			return
		}
		switch m := m.(type) {
		case wire.Accept:
			select {
			case accepted <- m:
			default:
			}
		case wire.Refuse:
			c.finish(&RefusedError{Reason: m.Reason})
			return
		case wire.Snapshot:
			c.pushSnapshot(m)
		case wire.End:
			c.mu.Lock()
			c.end = &m
			c.mu.Unlock()
			return
		default:
			c.finish(fmt.Errorf("%w: unexpected %s from server", wire.ErrMalformed, m.Type()))
			return
		}
	}
}

// pushSnapshot queues s, dropping the oldest queued snapshot when full. Only
// the reader sends, so after one receive there is room.
func (c *Client) pushSnapshot(s wire.Snapshot) {
	for {
		select {
		case c.snapshots <- s:
			return
		default:
		}
		select {
		case <-c.snapshots:
			c.dropped.Add(1)
		default:
		}
	}
}

// controlFilter is the socket kcp-go reads and writes. It hides relay
// control packets (WELCOME, REJECT, PONG, CHALLENGE) from kcp-go, reports
// REJECTs, answers the relay's CHALLENGEs, notes when anything last
// arrived, and lets Rebind swap the socket under a running session.
type controlFilter struct {
	mu     sync.Mutex
	pc     net.PacketConn // guarded by mu: the current socket
	closed bool           // guarded by mu

	rejects  chan packet.RejectReason
	relay    netip.AddrPort // where HELLOs go; CHALLENGEs from elsewhere are ignored
	token    []byte
	lastRecv atomic.Int64 // unix nanos of the last datagram received
}

// newControlFilter wraps pc; CHALLENGEs from relay are answered with token.
func newControlFilter(pc net.PacketConn, relay net.Addr, token []byte) *controlFilter {
	f := &controlFilter{pc: pc, rejects: make(chan packet.RejectReason, 1),
		relay: addrPortOf(relay), token: token}
	f.lastRecv.Store(time.Now().UnixNano())
	return f
}

// addrPortOf is the canonical ip:port of a UDP address (invalid otherwise).
func addrPortOf(a net.Addr) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// answerChallenge echoes the relay's cookie with the token (HELLO_COOKIE):
// the relay moves a binding to a new client address only after that
// address proved it receives the relay's datagrams (docs/protocol.md §3).
// Whenever a HELLO may be answered -- the first one, a retransmission, a
// HELLO after the local address changed -- a CHALLENGE may come back
// instead of WELCOME.
func (f *controlFilter) answerChallenge(from net.Addr, cookie packet.Cookie) {
	if !f.relay.IsValid() || addrPortOf(from) != f.relay {
		return // the token goes to the relay only
	}
	_, _ = f.WriteTo(packet.AppendHelloCookie(nil, f.token, cookie), from)
}

func (f *controlFilter) current() net.PacketConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pc
}

// swap makes pc the socket and closes the old one (which ends a ReadFrom
// blocked on it; the reader then continues on pc).
func (f *controlFilter) swap(pc net.PacketConn) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		pc.Close()
		return ErrClosed
	}
	old := f.pc
	f.pc = pc
	f.mu.Unlock()
	return old.Close()
}

func (f *controlFilter) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		pc := f.current()
		n, addr, err := pc.ReadFrom(b)
		if err != nil {
			f.mu.Lock()
			swapped := f.pc != pc && !f.closed
			f.mu.Unlock()
			if swapped {
				continue
			}
			return n, addr, err
		}
		f.lastRecv.Store(time.Now().UnixNano())
		if !packet.IsControl(b[:n]) {
			return n, addr, nil
		}
		c, perr := packet.ParseControl(b[:n])
		switch {
		case perr != nil:
		case c.Type == packet.TypeReject:
			select {
			case f.rejects <- c.Reason:
			default:
			}
		case c.Type == packet.TypeChallenge:
			f.answerChallenge(addr, c.Cookie)
		}
	}
}

func (f *controlFilter) WriteTo(b []byte, addr net.Addr) (int, error) {
	return f.current().WriteTo(b, addr)
}

func (f *controlFilter) LocalAddr() net.Addr { return f.current().LocalAddr() }

func (f *controlFilter) SetDeadline(t time.Time) error { return f.current().SetDeadline(t) }

func (f *controlFilter) SetReadDeadline(t time.Time) error { return f.current().SetReadDeadline(t) }

func (f *controlFilter) SetWriteDeadline(t time.Time) error { return f.current().SetWriteDeadline(t) }

// Close closes the current socket; later swaps are refused.
func (f *controlFilter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return f.pc.Close()
}
