package relay

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// StaticSessions is an in-memory SessionChecker: a set of live session ids.
// It suits tests and single-process dev; production asks the cell's Redis.
// The zero value is an empty set ready to use.
type StaticSessions struct {
	mu   sync.RWMutex
	live map[uuid.UUID]struct{} // guarded by mu
}

// NewStaticSessions returns a set holding ids.
func NewStaticSessions(ids ...uuid.UUID) *StaticSessions {
	s := &StaticSessions{}
	for _, id := range ids {
		s.Add(id)
	}
	return s
}

// Add marks id live.
func (s *StaticSessions) Add(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = make(map[uuid.UUID]struct{})
	}
	s.live[id] = struct{}{}
}

// Remove marks id ended.
func (s *StaticSessions) Remove(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, id)
}

// SessionLive implements SessionChecker.
func (s *StaticSessions) SessionLive(_ context.Context, id uuid.UUID) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.live[id]
	return ok, nil
}

// MemoryReplayGuard is an in-memory ReplayGuard whose entries expire after
// their ttl. It only protects one process; relays of a cell share Redis.
type MemoryReplayGuard struct {
	now func() time.Time // for tests; time.Now when nil

	mu     sync.Mutex
	seen   map[[16]byte]time.Time // guarded by mu; nonce → expiry
	nextGC time.Time              // guarded by mu
}

// NewMemoryReplayGuard returns an empty guard.
func NewMemoryReplayGuard() *MemoryReplayGuard {
	return &MemoryReplayGuard{seen: make(map[[16]byte]time.Time)}
}

// FirstUse implements ReplayGuard. Expired entries are swept at most once per
// second, so memory stays proportional to nonces seen within their ttl.
func (g *MemoryReplayGuard) FirstUse(_ context.Context, nonce [16]byte, ttl time.Duration) (bool, error) {
	now := time.Now()
	if g.now != nil {
		now = g.now()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = make(map[[16]byte]time.Time)
	}
	if now.After(g.nextGC) {
		for n, exp := range g.seen {
			if !now.Before(exp) {
				delete(g.seen, n)
			}
		}
		g.nextGC = now.Add(time.Second)
	}
	if exp, ok := g.seen[nonce]; ok && now.Before(exp) {
		return false, nil
	}
	g.seen[nonce] = now.Add(ttl)
	return true, nil
}

// Len returns the number of remembered nonces (expired ones may linger up to
// a second).
func (g *MemoryReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}
