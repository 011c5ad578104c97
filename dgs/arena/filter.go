package arena

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/sourcelimit"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/packet"
)

// admission is who may speak KCP to the server: source addresses whose HELLO
// carried a valid token for the current match. It also remembers, for the
// match, the address each token (by nonce) was admitted from: a token binds
// once per DGS.
type admission struct {
	mu      sync.RWMutex
	byIP    map[netip.AddrPort]admitted // guarded by mu
	byNonce map[[16]byte]netip.AddrPort // guarded by mu
}

type admitted struct {
	player uuid.UUID
	token  []byte
}

func (a *admission) lookup(ap netip.AddrPort) (admitted, bool) {
	a.mu.RLock()
	e, ok := a.byIP[ap]
	a.mu.RUnlock()
	return e, ok
}

// admit lets ap in for e unless e's token (nonce) was admitted from another
// address during this match; it reports whether it did.
func (a *admission) admit(ap netip.AddrPort, nonce [16]byte, e admitted) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if first, ok := a.byNonce[nonce]; ok && first != ap {
		return false
	}
	if a.byIP == nil {
		a.byIP = make(map[netip.AddrPort]admitted)
		a.byNonce = make(map[[16]byte]netip.AddrPort)
	}
	a.byIP[ap] = e
	a.byNonce[nonce] = ap
	return true
}

func (a *admission) revoke(ap netip.AddrPort) {
	a.mu.Lock()
	delete(a.byIP, ap)
	a.mu.Unlock()
}

func (a *admission) reset() {
	a.mu.Lock()
	a.byIP, a.byNonce = nil, nil
	a.mu.Unlock()
}

// addrPort returns the canonical (unmapped) ip:port of a UDP address.
func addrPort(addr net.Addr) (netip.AddrPort, bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// filterConn is the net.PacketConn kcp-go reads from: it consumes relay
// control packets (HELLO pre-authorises its source) and drops KCP traffic
// from addresses that are not admitted, so kcp-go never creates a session
// for an unverified address.
type filterConn struct {
	net.PacketConn
	adm     *admission
	onHello func(ap netip.AddrPort, token []byte) // verifies and admits
	limit   *sourcelimit.Limiter[netip.AddrPort]  // HELLOs per source; read goroutine only

	helloSeen    atomic.Int64
	helloLimited atomic.Int64
	unauthorised atomic.Int64
}

// ReadFrom implements net.PacketConn for kcp-go.
func (f *filterConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := f.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		ap, ok := addrPort(addr)
		if !ok {
			continue
		}
		if packet.IsControl(b[:n]) {
			if c, err := packet.ParseControl(b[:n]); err == nil && c.Type == packet.TypeHello {
				f.helloSeen.Add(1)
				if !f.limit.Allow(ap, time.Now()) {
					f.helloLimited.Add(1)
					continue
				}
				f.onHello(ap, c.Token)
			}
			continue
		}
		if _, ok := f.adm.lookup(ap); !ok {
			f.unauthorised.Add(1)
			continue
		}
		return n, addr, nil
	}
}

// verifyHello decides whether a HELLO admits ap. It runs on kcp-go's read
// goroutine, after the per-source limit: a repeated HELLO with the same
// token from an admitted address returns before any signature check, and so
// do tokens failing the cheap checks (version, key id, expiry).
//
// Replay guard: a token binds once per DGS. The relay forwards a player's
// HELLOs (retransmissions, and after a NAT rebinding it authorised by
// return routability) through the one upstream socket of that player's
// binding, so they all come from one address and are idempotent here; the
// same token from another address is a replay and is refused.
func (s *Server) verifyHello(ap netip.AddrPort, token []byte) {
	prev, known := s.adm.lookup(ap)
	if known && bytes.Equal(prev.token, token) {
		return // retransmission or NAT rebinding through the same upstream
	}
	m := s.currentMatch()
	if m == nil {
		return
	}
	now := s.now().Add(-s.cfg.TokenLeeway)
	if _, err := m.verifier.Precheck(token, now); err != nil &&
		(!errors.Is(err, connecttoken.ErrExpired) || !known) {
		return
	}
	s.stats.HellosVerified.Add(1)
	tok, err := m.verifier.Verify(token, now)
	switch {
	case err == nil:
	case errors.Is(err, connecttoken.ErrExpired) && known:
		// Signature good, expired: may still refresh its own address.
		if tok, err = connecttoken.Parse(token); err != nil {
			return
		}
	default:
		return
	}
	if tok.SessionID != m.session {
		return
	}
	if _, ok := m.slotOf[tok.PlayerID]; !ok {
		return
	}
	if known && prev.player != tok.PlayerID {
		return // one address carries one player
	}
	if !s.adm.admit(ap, tok.Nonce, admitted{player: tok.PlayerID, token: bytes.Clone(token)}) {
		s.stats.HellosReplayed.Add(1)
	}
}
