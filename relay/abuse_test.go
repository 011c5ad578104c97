package relay

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/proto/packet"
)

// slowSessions stands in for the cell's Redis: every SessionLive costs a
// round trip.
type slowSessions struct {
	*StaticSessions
	delay time.Duration
	calls atomic.Int64
}

func (s *slowSessions) SessionLive(ctx context.Context, id uuid.UUID) (bool, error) {
	s.calls.Add(1)
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.StaticSessions.SessionLive(ctx, id)
}

// listenOn opens a UDP socket on ip (any 127.0.0.0/8 address is loopback on
// Linux, so a test can stand for several source IPs).
func listenOn(t testing.TB, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A flood of ~50k forged, stale and garbage HELLOs per second from a few
// sockets neither stops a bound session's traffic nor a new client's
// handshake, and the HELLOs dropped by the per-source limits are counted.
func TestHelloFloodSparesBoundSessionAndNewHandshake(t *testing.T) {
	n := networks[0]
	dgs := startDGS(t, n)
	conn := listenOn(t, "127.0.0.1")
	sessions := &slowSessions{StaticSessions: NewStaticSessions(), delay: 2 * time.Millisecond}
	k := newKeys(t)
	r, err := New(Config{}, Deps{
		Conn: conn, Verifier: k.verifier, Sessions: sessions, Replay: NewMemoryReplayGuard(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRelay{Relay: r, addr: addrPort(conn), keys: k}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	session := uuid.New()
	sessions.Add(session)
	bound := listenOn(t, "127.0.0.1")
	tr.bind(t, bound, k.mint(t, session, uuid.New(), dgs.addr(), time.Now().Add(time.Minute)))

	// The flood: tokens with a trusted key id and a bad signature, a
	// captured token replayed after its expiry (valid signature, live
	// session), and wrong-length HELLOs.
	forged := k.mint(t, session, uuid.New(), dgs.addr(), time.Now().Add(time.Minute))
	forged[len(forged)-1] ^= 0xff
	stale := k.mint(t, session, uuid.New(), dgs.addr(), time.Now().Add(-time.Second))
	var junk [packet.HelloLen + 3]byte
	rand.Read(junk[:])
	copy(junk[:], packet.Magic[:])
	junk[4] = byte(packet.TypeHello)
	floods := [][]byte{packet.AppendHello(nil, forged), packet.AppendHello(nil, stale), junk[:]}

	const perSecond, senders, floodFor = 50000, 6, 3 * time.Second
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range senders {
		c := listenOn(t, fmt.Sprintf("127.0.0.%d", 2+i%3))
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			start, mine := time.Now(), int64(0)
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				// Catch up to perSecond/senders whatever the ticker's jitter.
				for due := int64(time.Since(start).Seconds() * perSecond / senders); mine < due; mine++ {
					c.WriteToUDPAddrPort(floods[mine%int64(len(floods))], tr.addr)
					sent.Add(1)
				}
			}
		}()
	}
	floodStart := time.Now()
	defer func() { close(stop); wg.Wait() }()

	// The bound session's datagrams keep flowing both ways for the whole
	// flood.
	echoes := 0
	for time.Since(floodStart) < floodFor {
		roundTrip(t, bound, tr.addr, []byte(fmt.Sprintf("during-flood-%d", echoes)))
		echoes++
		time.Sleep(10 * time.Millisecond)
	}
	if echoes < 20 {
		t.Fatalf("%d echoes for the bound session during the flood", echoes)
	}
	// A new client (another source IP than the flood's) completes its
	// handshake, retransmitting HELLO as a client does.
	newcomer := listenOn(t, "127.0.0.1")
	token := k.mint(t, session, uuid.New(), dgs.addr(), time.Now().Add(time.Minute))
	welcomed, attempts := false, 0
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(10 * time.Second); !welcomed && time.Now().Before(deadline); attempts++ {
		send(t, newcomer, tr.addr, packet.AppendHello(nil, token))
		newcomer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if m, err := newcomer.Read(buf); err == nil {
			c, err := packet.ParseControl(buf[:m])
			if err != nil || c.Type != packet.TypeWelcome {
				t.Fatalf("new client's HELLO answered %v %v (%v)", c.Type, c.Reason, err)
			}
			welcomed = true
		}
	}
	if !welcomed {
		t.Fatal("a new client's HELLO got no WELCOME within 10s of flood")
	}
	roundTrip(t, newcomer, tr.addr, []byte("newcomer"))
	if s := sent.Load(); float64(s) < 0.5*perSecond*floodFor.Seconds() {
		t.Fatalf("only %d flood datagrams sent: the test did not flood", s)
	}
	t.Logf("flood datagrams sent %d, hello_limited drops %v, handshake_queue drops %v, session checks %d, newcomer HELLOs %d",
		sent.Load(), tr.drops(t, dropHelloLimited), tr.drops(t, dropHandshakeQueue), sessions.calls.Load(), attempts)
	if d := tr.drops(t, dropHelloLimited); d < 10000 {
		t.Fatalf("hello_limited drops = %v, want most of the flood", d)
	}
	// What passes the limits never fills the handshake queue, so no
	// legitimate HELLO is lost to the flood.
	if d := tr.drops(t, dropHandshakeQueue); d != 0 {
		t.Fatalf("%v HELLOs dropped on a full handshake queue", d)
	}
	// The stale token never reached the session store: it was refused on
	// its expiry before the signature and the store.
	if c := sessions.calls.Load(); c > 100 {
		t.Fatalf("%d session store calls during the flood", c)
	}
}

// A HELLO replayed with a spoofed source (here: sent from a socket that
// never answers the CHALLENGE) does not move the binding or the DGS's
// downstream traffic; a real rebinding (the client's new socket echoes the
// cookie) does.
func TestSpoofedReplayDoesNotMoveBinding(t *testing.T) {
	n := networks[0]
	dgs := startDGS(t, n)
	tr := startRelay(t, n, Config{})
	token, _, _ := tr.session(t, dgs.addr())
	client, victim, other := listen(t, n), listen(t, n), listen(t, n)
	tr.bind(t, client, token)
	upstream := dgs.next(t).from

	if a := tr.hello(t, victim, token); a.Type != packet.TypeChallenge {
		t.Fatalf("replayed HELLO from a new address answered %v %v, want challenge", a.Type, a.Reason)
	}
	// Neither a made-up cookie nor one sent to another address moves it.
	send(t, victim, tr.addr, packet.AppendHelloCookie(nil, token, packet.Cookie{1, 2, 3}))
	if a, err := packet.ParseControl(recv(t, victim)); err != nil || a.Type != packet.TypeChallenge {
		t.Fatalf("forged cookie answered %v (%v), want a new challenge", a.Type, err)
	}
	theirs := tr.hello(t, other, token)
	if theirs.Type != packet.TypeChallenge {
		t.Fatalf("HELLO from other answered %v", theirs.Type)
	}
	send(t, victim, tr.addr, packet.AppendHelloCookie(nil, token, theirs.Cookie))
	if a, err := packet.ParseControl(recv(t, victim)); err != nil || a.Type != packet.TypeChallenge {
		t.Fatalf("another address's cookie answered %v (%v), want a new challenge", a.Type, err)
	}
	// The binding stayed with the client: its datagrams still reach the DGS
	// through the same upstream and the DGS's answers come back to it.
	roundTrip(t, client, tr.addr, []byte("still mine"))
	for g := dgs.next(t); string(g.data) != "still mine"; g = dgs.next(t) {
		if c, err := packet.ParseControl(g.data); err == nil && c.Type == packet.TypeHello {
			t.Fatal("a challenged HELLO was forwarded to the DGS")
		}
	}
	if v := tr.hellosOutcome(t, helloMoved); v != 0 {
		t.Fatalf("moved hellos %v, want 0", v)
	}
	if v := tr.hellosOutcome(t, helloChallenged); v < 4 {
		t.Fatalf("challenged hellos %v, want 4", v)
	}

	// The client really changes socket: it echoes the cookie and moves.
	newSock := listen(t, n)
	a := tr.hello(t, newSock, token)
	if a.Type != packet.TypeChallenge {
		t.Fatalf("rebinding HELLO answered %v, want challenge", a.Type)
	}
	send(t, newSock, tr.addr, packet.AppendHelloCookie(nil, token, a.Cookie))
	if w, err := packet.ParseControl(recv(t, newSock)); err != nil || w.Type != packet.TypeWelcome {
		t.Fatalf("HELLO_COOKIE answered %v %v (%v), want welcome", w.Type, w.Reason, err)
	}
	if g := dgs.next(t); g.from != upstream {
		t.Fatalf("rebinding HELLO reached the DGS from %v, want %v", g.from, upstream)
	}
	roundTrip(t, newSock, tr.addr, []byte("moved"))
	if v := tr.hellosOutcome(t, helloMoved); v != 1 {
		t.Fatalf("moved hellos %v, want 1", v)
	}
}

// A cookie is good for ChallengeTTL only.
func TestExpiredCookieIsChallengedAgain(t *testing.T) {
	n := networks[0]
	dgs := startDGS(t, n)
	tr := startRelay(t, n, Config{ChallengeTTL: time.Millisecond})
	token, _, _ := tr.session(t, dgs.addr())
	tr.bind(t, listen(t, n), token)
	c := listen(t, n)
	a := tr.hello(t, c, token)
	if a.Type != packet.TypeChallenge {
		t.Fatalf("answered %v, want challenge", a.Type)
	}
	time.Sleep(5 * time.Millisecond) // outlive the 1 ms cookie
	send(t, c, tr.addr, packet.AppendHelloCookie(nil, token, a.Cookie))
	if b, err := packet.ParseControl(recv(t, c)); err != nil || b.Type != packet.TypeChallenge || b.Cookie == a.Cookie {
		t.Fatalf("stale cookie answered %v (%v), want a fresh challenge", b.Type, err)
	}
}
