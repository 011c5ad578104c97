package arena

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/xtaci/kcp-go/v5"

	"github.com/cellgrid/cellgrid/internal/sourcelimit"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// Server serves arena matches on one UDP socket, one match at a time.
type Server struct {
	cfg Config
	pc  *filterConn
	ln  *kcp.Listener
	adm admission

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // every goroutine the server started
	streams   atomic.Int64   // KCP streams being served (lingering ones too)

	mu    sync.Mutex
	match *match // guarded by mu: the running match, nil between matches

	stats Stats
}

// Stats are counters for tests and metrics.
type Stats struct {
	HellosSeen       atomic.Int64 // relay HELLOs consumed by the filter
	HellosLimited    atomic.Int64 // HELLOs dropped over their source's rate, unverified
	HellosVerified   atomic.Int64 // HELLOs whose signature was checked
	HellosReplayed   atomic.Int64 // valid tokens refused: already bound from another address
	Unauthorised     atomic.Int64 // datagrams dropped: no admitted HELLO
	Refused          atomic.Int64 // JOINs refused
	Joined           atomic.Int64 // JOINs accepted
	InputsDropped    atomic.Int64 // inputs dropped by a full queue
	FramesDropped    atomic.Int64 // outgoing frames dropped by a full queue
	MalformedStreams atomic.Int64 // streams closed for a protocol error
}

// New returns a Server on conn, which it owns from now on (Close closes it).
// Call Run to serve.
func New(cfg Config, conn net.PacketConn) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, closing: make(chan struct{})}
	s.pc = &filterConn{PacketConn: conn, adm: &s.adm, onHello: s.verifyHello,
		limit: sourcelimit.New[netip.AddrPort](cfg.HelloPerSource, int(2*cfg.HelloPerSource), cfg.HelloSources)}
	ln, err := kcp.ServeConn(nil, 0, 0, s.pc)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("arena: kcp listener: %w", err)
	}
	s.ln = ln
	return s, nil
}

// Addr is the game socket's local address.
func (s *Server) Addr() net.Addr { return s.pc.LocalAddr() }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats {
	s.stats.HellosSeen.Store(s.pc.helloSeen.Load())
	s.stats.HellosLimited.Store(s.pc.helloLimited.Load())
	s.stats.Unauthorised.Store(s.pc.unauthorised.Load())
	return &s.stats
}

func (s *Server) now() time.Time { return time.Now() }

func (s *Server) currentMatch() *match {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.match
}

// Busy reports whether a match is running.
func (s *Server) Busy() bool { return s.currentMatch() != nil }

// Run accepts KCP streams until ctx is cancelled or Close is called, then
// ends the running match (reason abandoned), closes every stream and the
// socket, and returns once every goroutine it started has ended.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.shutdown)
	defer stop()
	for {
		sess, err := s.ln.AcceptKCP()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go s.serveStream(sess)
	}
	s.shutdown()
	s.wg.Wait()
	return ctx.Err()
}

// Settle waits until no match runs and every stream has ended (a stream
// lingers after END until its player has it, see Config.Linger), or ctx is
// done. A server that stops right after a match calls it first, so closing
// the socket does not cut an END still being retransmitted.
func (s *Server) Settle(ctx context.Context) {
	for s.Busy() || s.streams.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the server like cancelling Run's context; safe twice.
func (s *Server) Close() error {
	s.shutdown()
	return nil
}

func (s *Server) shutdown() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.mu.Lock()
		m := s.match
		s.mu.Unlock()
		if m != nil {
			m.abort()
			<-m.done
		}
		s.ln.Close()
		s.pc.Close() // ends kcp-go's read goroutine and every stream's reads
	})
}

// StartMatch starts the match of an allocation. It refuses (and the SDK
// stays Ready) when a match is running or the allocation is unusable.
func (s *Server) StartMatch(a events.Allocation) error {
	m, err := s.newMatch(a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	select {
	case <-s.closing:
		s.mu.Unlock()
		return ErrClosed
	default:
	}
	if s.match != nil {
		s.mu.Unlock()
		return ErrBusy
	}
	s.match = m
	s.adm.reset()
	s.wg.Add(1)
	s.mu.Unlock()
	go m.run()
	return nil
}

// CancelMatch ends the running match of session (as abandoned, its result
// handed over as usual) and waits for it; no-op for another session. The
// SDK calls it when the cell withdrew the allocation.
func (s *Server) CancelMatch(session string) {
	s.mu.Lock()
	m := s.match
	s.mu.Unlock()
	if m == nil || m.session.String() != session {
		return
	}
	m.abort()
	<-m.done
}

func (s *Server) newMatch(a events.Allocation) (*match, error) {
	session, err := uuid.Parse(a.SessionID)
	if err != nil {
		return nil, fmt.Errorf("%w: session id: %v", ErrBadAllocation, err)
	}
	if len(a.Players) == 0 || len(a.Players) > wire.MaxPlayers {
		return nil, fmt.Errorf("%w: %d players", ErrBadAllocation, len(a.Players))
	}
	var keys []ed25519.PublicKey
	for _, k := range a.ConnectKeys {
		pub, err := connecttoken.ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadAllocation, err)
		}
		keys = append(keys, pub)
	}
	verifier, err := connecttoken.NewVerifier(keys...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAllocation, err)
	}
	teamOf := map[string]int{}
	for i, team := range a.Teams {
		for _, p := range team {
			teamOf[p] = i
		}
	}
	ids := make([]uuid.UUID, len(a.Players))
	teams := make([]int, len(a.Players))
	slotOf := make(map[uuid.UUID]int, len(a.Players))
	for i, p := range a.Players {
		id, err := uuid.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("%w: player %q: %v", ErrBadAllocation, p, err)
		}
		if _, dup := slotOf[id]; dup {
			return nil, fmt.Errorf("%w: player %s twice", ErrBadAllocation, id)
		}
		ids[i], slotOf[id] = id, i
		teams[i] = i // free-for-all: every player its own team
		if t, ok := teamOf[p]; ok {
			teams[i] = t
		}
	}
	mode := a.GameMode
	if mode == "" {
		mode = s.cfg.GameMode
	}
	return &match{
		srv:      s,
		cfg:      &s.cfg,
		session:  session,
		mode:     mode,
		verifier: verifier,
		slotOf:   slotOf,
		sim:      newSim(&s.cfg, ids, teams),
		joins:    make(chan *conn),
		leaves:   make(chan *conn),
		aborted:  make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// matchEnded is called by the match goroutine as it finishes.
func (s *Server) matchEnded(m *match) {
	s.mu.Lock()
	if s.match == m {
		s.match = nil
	}
	s.mu.Unlock()
	s.adm.reset()
}

// serveStream runs one KCP stream: JOIN, then the player's inputs.
func (s *Server) serveStream(sess *kcp.UDPSession) {
	defer s.wg.Done()
	s.streams.Add(1)
	defer s.streams.Add(-1)
	tuneKCP(sess)
	ap, _ := addrPort(sess.RemoteAddr())
	r := bufio.NewReaderSize(sess, 4096)
	buf := make([]byte, wire.MaxFrame)

	_ = sess.SetReadDeadline(time.Now().Add(s.cfg.JoinTimeout))
	frame, err := wire.ReadFrame(r, buf)
	if err != nil {
		s.adm.revoke(ap)
		sess.Close()
		return
	}
	m, slot, reason := s.checkJoin(ap, frame)
	if reason != 0 {
		s.stats.Refused.Add(1)
		s.adm.revoke(ap) // its KCP retransmissions must not open a new stream
		s.refuse(sess, r, buf, reason)
		return
	}
	_ = sess.SetReadDeadline(time.Time{})
	c := &conn{
		srv:    s,
		sess:   sess,
		addr:   ap,
		slot:   slot,
		inputs: make(chan wire.Input, s.cfg.InputQueue),
		out:    make(chan []byte, s.cfg.OutQueue),
		finish: make(chan struct{}),
		closed: make(chan struct{}),
	}
	select {
	case m.joins <- c:
	case <-m.done:
		s.refuse(sess, r, buf, wire.RefuseMatchOver)
		return
	}
	s.stats.Joined.Add(1)
	s.wg.Add(1)
	go c.writeLoop()
	c.readLoop(r, buf)
	close(c.closed)
	sess.Close()
	// Late KCP segments from this address must not open a ghost stream; a
	// client coming back sends HELLO again (the relay forwards every HELLO).
	s.adm.revoke(ap)
	select {
	case m.leaves <- c:
	case <-m.done:
	}
}

// checkJoin verifies a JOIN frame from ap against the running match.
func (s *Server) checkJoin(ap netip.AddrPort, frame []byte) (*match, int, wire.RefuseReason) {
	msg, err := wire.Decode(frame)
	join, ok := msg.(wire.Join)
	if err != nil || !ok {
		return nil, 0, wire.RefuseMalformed
	}
	m := s.currentMatch()
	if m == nil {
		return nil, 0, wire.RefuseWrongSession
	}
	tok, err := m.verifier.Verify(join.Token, s.now().Add(-s.cfg.TokenLeeway))
	switch {
	case errors.Is(err, connecttoken.ErrExpired):
		return nil, 0, wire.RefuseExpired
	case errors.Is(err, connecttoken.ErrMalformed):
		return nil, 0, wire.RefuseMalformed
	case err != nil:
		return nil, 0, wire.RefuseInvalidToken
	}
	if tok.SessionID != m.session {
		return nil, 0, wire.RefuseWrongSession
	}
	slot, ok := m.slotOf[tok.PlayerID]
	if !ok {
		return nil, 0, wire.RefuseNotInMatch
	}
	if adm, ok := s.adm.lookup(ap); !ok || adm.player != tok.PlayerID {
		return nil, 0, wire.RefuseWrongAddress
	}
	return m, slot, 0
}

// refuse sends REFUSE and keeps the stream open for Linger so KCP can
// deliver it, then closes it.
func (s *Server) refuse(sess *kcp.UDPSession, r *bufio.Reader, buf []byte, reason wire.RefuseReason) {
	_ = sess.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = sess.Write(wire.AppendFrame(nil, wire.Refuse{Reason: reason}))
	linger(sess, r, buf, s.cfg.Linger)
	sess.Close()
}

// linger reads (and discards) until the peer goes quiet or d passes.
func linger(sess *kcp.UDPSession, r *bufio.Reader, buf []byte, d time.Duration) {
	_ = sess.SetReadDeadline(time.Now().Add(d))
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// tuneKCP applies the KCP settings both ends of the wire protocol use.
func tuneKCP(s *kcp.UDPSession) {
	s.SetNoDelay(wire.KCPNoDelay, wire.KCPInterval, wire.KCPResend, wire.KCPNoCongestion)
	s.SetWindowSize(wire.KCPSendWnd, wire.KCPRecvWnd)
	s.SetWriteDelay(false)
	s.SetACKNoDelay(false)
}
