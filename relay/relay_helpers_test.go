package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/packet"
)

// eventually polls f until it returns nil or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// network is one address family the tests run on.
type network struct {
	name, net, loopback string
}

var networks = []network{
	{"ipv4", "udp4", "127.0.0.1"},
	{"ipv6", "udp6", "::1"},
}

// forEachNetwork runs f on IPv4 and IPv6 loopback. A machine without ::1
// fails the IPv6 cases (listen error) rather than skipping them silently.
func forEachNetwork(t *testing.T, f func(t *testing.T, n network)) {
	for _, n := range networks {
		t.Run(n.name, func(t *testing.T) { f(t, n) })
	}
}

func listen(t testing.TB, n network) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(n.net, &net.UDPAddr{IP: net.ParseIP(n.loopback)})
	if err != nil {
		t.Fatalf("listen %s: %v", n.net, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrPort(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// keys is a token signer and the matching verifier.
type keys struct {
	priv     ed25519.PrivateKey
	verifier *connecttoken.Verifier
}

func newKeys(t testing.TB) keys {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := connecttoken.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return keys{priv: priv, verifier: v}
}

func (k keys) mint(t testing.TB, session, player uuid.UUID, dgs netip.AddrPort, exp time.Time) []byte {
	t.Helper()
	b, err := connecttoken.Mint(k.priv, connecttoken.Token{
		SessionID: session, PlayerID: player, ExpiresAt: exp, ServerAddr: dgs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// datagram is what the fake DGS received.
type datagram struct {
	from netip.AddrPort
	data []byte
}

// fakeDGS is a game server on a real UDP socket: it records every datagram
// and echoes everything but HELLOs back to the sender.
type fakeDGS struct {
	conn *net.UDPConn
	got  chan datagram
	wg   sync.WaitGroup
}

func startDGS(t testing.TB, n network) *fakeDGS {
	t.Helper()
	d := &fakeDGS{conn: listen(t, n), got: make(chan datagram, 4096)}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		buf := make([]byte, 65536)
		for {
			k, from, err := d.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := append([]byte(nil), buf[:k]...)
			select {
			case d.got <- datagram{from, b}:
			default:
			}
			if c, err := packet.ParseControl(b); err == nil && c.Type == packet.TypeHello {
				continue
			}
			d.conn.WriteToUDPAddrPort(b, from)
		}
	}()
	t.Cleanup(func() { d.conn.Close(); d.wg.Wait() })
	return d
}

func (d *fakeDGS) addr() netip.AddrPort { return addrPort(d.conn) }

// next returns the next datagram the DGS received.
func (d *fakeDGS) next(t testing.TB) datagram {
	t.Helper()
	select {
	case g := <-d.got:
		return g
	case <-time.After(5 * time.Second):
		t.Fatal("DGS received nothing")
	}
	return datagram{}
}

// testRelay is a running Relay with in-memory stores.
type testRelay struct {
	*Relay
	addr     netip.AddrPort
	sessions *StaticSessions
	replay   *MemoryReplayGuard
	keys     keys
	stop     func() error // cancels Run and returns its result
}

func startRelay(t testing.TB, n network, cfg Config) *testRelay {
	t.Helper()
	conn, err := net.ListenUDP(n.net, &net.UDPAddr{IP: net.ParseIP(n.loopback)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRelay{sessions: NewStaticSessions(), replay: NewMemoryReplayGuard(), keys: newKeys(t)}
	r, err := New(cfg, Deps{
		Conn: conn, Verifier: tr.keys.verifier, Sessions: tr.sessions, Replay: tr.replay,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.Relay, tr.addr = r, addrPort(conn)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	tr.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := tr.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return tr
}

// session makes a live session and a token for one player of it.
func (tr *testRelay) session(t testing.TB, dgs netip.AddrPort) (token []byte, session, player uuid.UUID) {
	t.Helper()
	session, player = uuid.New(), uuid.New()
	tr.sessions.Add(session)
	return tr.keys.mint(t, session, player, dgs, time.Now().Add(time.Minute)), session, player
}

// recv reads one datagram on c, failing the test after a generous deadline.
func recv(t testing.TB, c *net.UDPConn) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("recv on %s: %v", c.LocalAddr(), err)
	}
	return buf[:n]
}

func send(t testing.TB, c *net.UDPConn, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// hello sends a HELLO and returns the relay's answer.
func (tr *testRelay) hello(t testing.TB, c *net.UDPConn, token []byte) packet.Control {
	t.Helper()
	send(t, c, tr.addr, packet.AppendHello(nil, token))
	ans, err := packet.ParseControl(recv(t, c))
	if err != nil {
		t.Fatalf("answer to HELLO: %v", err)
	}
	return ans
}

// helloEcho sends a HELLO, answers a CHALLENGE as a client does
// (HELLO_COOKIE echoing the cookie) and returns the final answer.
func (tr *testRelay) helloEcho(t testing.TB, c *net.UDPConn, token []byte) packet.Control {
	t.Helper()
	a := tr.hello(t, c, token)
	if a.Type == packet.TypeChallenge {
		send(t, c, tr.addr, packet.AppendHelloCookie(nil, token, a.Cookie))
		var err error
		if a, err = packet.ParseControl(recv(t, c)); err != nil {
			t.Fatalf("answer to HELLO_COOKIE: %v", err)
		}
	}
	return a
}

// bind is helloEcho failing unless WELCOME comes back.
func (tr *testRelay) bind(t testing.TB, c *net.UDPConn, token []byte) {
	t.Helper()
	if a := tr.helloEcho(t, c, token); a.Type != packet.TypeWelcome {
		t.Fatalf("HELLO answered %v %v, want welcome", a.Type, a.Reason)
	}
}

func value(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	m, ok := c.(prometheus.Metric)
	if !ok {
		t.Fatalf("%T is not a single metric", c)
	}
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("unsupported metric %v", &d)
	return 0
}

func (tr *testRelay) drops(t testing.TB, reason string) float64 {
	return value(t, tr.m.drop[reason])
}

func (tr *testRelay) hellosOutcome(t testing.TB, outcome string) float64 {
	return value(t, tr.m.hellos.WithLabelValues(outcome))
}

func (tr *testRelay) bound() int { return tr.bindingCount() }

func atLeast(t testing.TB, got func() float64, want float64, what string) func() error {
	return func() error {
		if g := got(); g < want {
			return fmt.Errorf("%s = %v, want ≥ %v", what, g, want)
		}
		return nil
	}
}

// roundTrip sends msg until its echo comes back, as a KCP sender would
// retransmit: under a flood the kernel may drop a datagram. Stale echoes of
// earlier retransmissions are skipped.
func roundTrip(t testing.TB, c *net.UDPConn, to netip.AddrPort, msg []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		send(t, c, to, msg)
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, err := c.Read(buf)
			if err != nil {
				break // timed out: retransmit
			}
			if bytes.Equal(buf[:n], msg) {
				return
			}
		}
	}
	t.Fatalf("no echo of %q", msg)
}
