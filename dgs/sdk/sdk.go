package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/proto/events"
)

// Config configures an SDK. Cell, ID and NATS are required.
type Config struct {
	Cell    string
	ID      string
	Version string
	// GameAddr is the host:port clients (the relay) reach the game socket
	// at; it may be set later with SetGameAddr.
	GameAddr string
	NATS     *nats.Conn
	// HealthInterval is the heartbeat period. Zero means 1 s.
	HealthInterval time.Duration
	// ResultDuplicateWindow is the duplicate window of the match stream
	// when the SDK creates it. Zero means 1 h. An existing stream keeps its
	// own window.
	ResultDuplicateWindow time.Duration
	// Log defaults to slog.Default().
	Log *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Cell == "" || c.ID == "" || c.NATS == nil {
		return errors.New("dgs sdk: Cell, ID and NATS are required")
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = time.Second
	}
	if c.ResultDuplicateWindow <= 0 {
		c.ResultDuplicateWindow = time.Hour
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// AllocateFunc is called (on Run's goroutine) for an allocation request while
// Ready. Returning an error refuses it; the server stays Ready.
type AllocateFunc func(events.Allocation) error

// SDK is one game server's link to its cell.
type SDK struct {
	cfg Config
	js  jetstream.JetStream

	mu         sync.Mutex
	state      events.DGSState // guarded by mu
	session    string          // guarded by mu: set while allocated
	gameAddr   string          // guarded by mu
	onAllocate AllocateFunc    // guarded by mu
	onShutdown func()          // guarded by mu
	streamOK   bool            // guarded by mu: the match stream is known to exist
	published  map[string]bool // guarded by mu: sessions whose result was acked
}

// New returns an SDK in the scheduled state. Call Run to serve it.
func New(cfg Config) (*SDK, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("dgs sdk: jetstream: %w", err)
	}
	return &SDK{
		cfg:       cfg,
		js:        js,
		state:     events.DGSScheduled,
		gameAddr:  cfg.GameAddr,
		published: make(map[string]bool),
	}, nil
}

// HandleAllocate sets the allocation handler. Without one every allocation
// is accepted.
func (s *SDK) HandleAllocate(f AllocateFunc) {
	s.mu.Lock()
	s.onAllocate = f
	s.mu.Unlock()
}

// HandleShutdownRequest sets the handler for shutdown requests. Without one
// a request calls Shutdown.
func (s *SDK) HandleShutdownRequest(f func()) {
	s.mu.Lock()
	s.onShutdown = f
	s.mu.Unlock()
}

// SetGameAddr changes the advertised game address (e.g. once the port is
// known).
func (s *SDK) SetGameAddr(addr string) {
	s.mu.Lock()
	s.gameAddr = addr
	s.mu.Unlock()
}

// State returns the current state and session id.
func (s *SDK) State() (state events.DGSState, sessionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.session
}

// Ready marks the server Ready (again, after a match) and publishes a
// heartbeat at once.
func (s *SDK) Ready() error { return s.setState(events.DGSReady, "") }

// Shutdown marks the server shut down and publishes (and flushes) that
// heartbeat, so the fleet stops counting it. Safe to call twice.
func (s *SDK) Shutdown() error {
	if err := s.setState(events.DGSShutdown, ""); err != nil && !errors.Is(err, ErrShutdown) {
		return err
	}
	if err := s.cfg.NATS.FlushTimeout(2 * time.Second); err != nil {
		return fmt.Errorf("dgs sdk shutdown: flush: %w", err)
	}
	return nil
}

func (s *SDK) setState(state events.DGSState, session string) error {
	s.mu.Lock()
	if s.state == events.DGSShutdown {
		s.mu.Unlock()
		return ErrShutdown
	}
	s.state, s.session = state, session
	hb := s.healthLocked()
	s.mu.Unlock()
	return s.publish(hb)
}

func (s *SDK) healthLocked() events.DGSHealth {
	return events.DGSHealth{
		ID:        s.cfg.ID,
		Cell:      s.cfg.Cell,
		State:     s.state,
		GameAddr:  s.gameAddr,
		Version:   s.cfg.Version,
		SessionID: s.session,
		At:        time.Now().UTC(),
	}
}

func (s *SDK) publish(hb events.DGSHealth) error {
	b, err := json.Marshal(hb)
	if err != nil {
		return fmt.Errorf("dgs sdk heartbeat: %w", err)
	}
	if err := s.cfg.NATS.Publish(events.DGSHealthSubject(s.cfg.Cell), b); err != nil {
		return fmt.Errorf("dgs sdk heartbeat: %w", err)
	}
	return nil
}

// Run serves allocation and shutdown requests and publishes heartbeats until
// ctx is cancelled. It returns ctx's error (or a subscription error) after
// unsubscribing; it starts no goroutine that outlives it.
func (s *SDK) Run(ctx context.Context) error {
	allocs := make(chan *nats.Msg, 16)
	shutdowns := make(chan *nats.Msg, 4)
	allocSub, err := s.cfg.NATS.ChanSubscribe(events.DGSAllocateSubject(s.cfg.Cell, s.cfg.ID), allocs)
	if err != nil {
		return fmt.Errorf("dgs sdk: subscribe allocate: %w", err)
	}
	defer allocSub.Unsubscribe()
	shutSub, err := s.cfg.NATS.ChanSubscribe(events.DGSShutdownSubject(s.cfg.Cell, s.cfg.ID), shutdowns)
	if err != nil {
		return fmt.Errorf("dgs sdk: subscribe shutdown: %w", err)
	}
	defer shutSub.Unsubscribe()
	// The subscriptions must be known to the server before we announce we
	// can be allocated.
	if err := s.cfg.NATS.Flush(); err != nil {
		return fmt.Errorf("dgs sdk: flush: %w", err)
	}

	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	s.heartbeat()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			s.heartbeat()
		case m := <-allocs:
			s.answerAllocation(m)
		case <-shutdowns:
			s.mu.Lock()
			f := s.onShutdown
			s.mu.Unlock()
			if f != nil {
				f()
			} else if err := s.Shutdown(); err != nil {
				s.cfg.Log.Warn("dgs sdk: shutdown", "err", err)
			}
		}
	}
}

func (s *SDK) heartbeat() {
	s.mu.Lock()
	hb := s.healthLocked()
	s.mu.Unlock()
	if err := s.publish(hb); err != nil {
		s.cfg.Log.Warn("dgs sdk: heartbeat", "err", err)
	}
}

func (s *SDK) answerAllocation(m *nats.Msg) {
	reply := s.allocate(m.Data)
	if m.Reply == "" {
		return
	}
	b, _ := json.Marshal(reply)
	if err := m.Respond(b); err != nil {
		s.cfg.Log.Warn("dgs sdk: allocation reply", "err", err)
	}
}

func (s *SDK) allocate(data []byte) events.AllocationReply {
	var a events.Allocation
	if err := json.Unmarshal(data, &a); err != nil || a.SessionID == "" {
		return events.AllocationReply{Error: "malformed allocation"}
	}
	s.mu.Lock()
	state, session, f := s.state, s.session, s.onAllocate
	s.mu.Unlock()
	switch {
	case state == events.DGSAllocated && session == a.SessionID:
		return events.AllocationReply{OK: true} // a retry of the request we accepted
	case state != events.DGSReady:
		return events.AllocationReply{Error: fmt.Sprintf("%v: state %s", ErrNotReady, state)}
	}
	if f != nil {
		if err := f(a); err != nil {
			return events.AllocationReply{Error: err.Error()}
		}
	}
	if err := s.setState(events.DGSAllocated, a.SessionID); err != nil {
		// The game accepted but the state could not be published (or we shut
		// down meanwhile): the heartbeat ticker publishes it again.
		s.cfg.Log.Warn("dgs sdk: allocated heartbeat", "err", err)
		if errors.Is(err, ErrShutdown) {
			return events.AllocationReply{Error: err.Error()}
		}
	}
	return events.AllocationReply{OK: true}
}

// ReportResult publishes r on the cell's match stream with Nats-Msg-Id =
// r.SessionID and waits for the JetStream ack. Calling it again for the same
// session (a retry after an error, or by mistake) is safe: JetStream drops
// the duplicate within the stream's duplicate window, and a session already
// acked in this process is not sent again. Cell and DGSID are filled when
// empty.
func (s *SDK) ReportResult(ctx context.Context, r events.MatchResult) error {
	if r.SessionID == "" {
		return ErrNoSession
	}
	if r.Cell == "" {
		r.Cell = s.cfg.Cell
	}
	if r.DGSID == "" {
		r.DGSID = s.cfg.ID
	}
	s.mu.Lock()
	done := s.published[r.SessionID]
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := s.ensureStream(ctx); err != nil {
		return fmt.Errorf("report result %s: %w", r.SessionID, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report result %s: %w", r.SessionID, err)
	}
	if _, err := s.js.Publish(ctx, events.MatchResultSubject(s.cfg.Cell), b,
		jetstream.WithMsgID(r.SessionID),
		jetstream.WithExpectStream(events.MatchStream(s.cfg.Cell))); err != nil {
		return fmt.Errorf("report result %s: %w", r.SessionID, err)
	}
	s.mu.Lock()
	s.published[r.SessionID] = true
	s.mu.Unlock()
	return nil
}

// ensureStream creates the cell's match stream when it does not exist. Two
// servers racing to create it is fine: the loser finds it in place.
func (s *SDK) ensureStream(ctx context.Context) error {
	s.mu.Lock()
	ok := s.streamOK
	s.mu.Unlock()
	if ok {
		return nil
	}
	if err := events.EnsureMatchStream(ctx, s.js, s.cfg.Cell, s.cfg.ResultDuplicateWindow); err != nil {
		return err
	}
	s.mu.Lock()
	s.streamOK = true
	s.mu.Unlock()
	return nil
}
