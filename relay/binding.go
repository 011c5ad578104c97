package relay

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"
)

type bindingKey struct {
	session, player uuid.UUID
}

// binding is one client's path to its DGS: the client's current address and
// an upstream socket connected to the DGS, used by nobody else.
type binding struct {
	key bindingKey
	up  *net.UDPConn // connected to the DGS; closed by closeBinding
	dgs netip.AddrPort

	// nonce of the token that may move this binding; written under Relay.mu.
	nonce [16]byte

	client     atomic.Pointer[netip.AddrPort] // current client address
	lastActive atomic.Int64                   // Relay.nowNanos of the last datagram either way

	// Limiters are used by the read loop only.
	packets *rate.Limiter
	bytes   *rate.Limiter

	closeOnce sync.Once
	closed    atomic.Bool
}

func (b *binding) allow(now time.Time, n int) bool {
	return b.packets.AllowN(now, 1) && b.bytes.AllowN(now, n)
}

// closeBinding unregisters b, closes its upstream socket (which ends its
// downstream pump) and updates the gauge. Idempotent. Must not be called with
// r.mu held.
func (r *Relay) closeBinding(b *binding) {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		r.mu.Lock()
		if r.byKey[b.key] == b {
			delete(r.byKey, b.key)
		}
		if c := b.client.Load(); c != nil && r.byAddr[*c] == b {
			delete(r.byAddr, *c)
		}
		r.mu.Unlock()
		b.up.Close()
		r.m.bound.Dec()
	})
}

// pumpDownstream copies datagrams from the DGS to the client's current
// address until the upstream socket is closed.
func (r *Relay) pumpDownstream(b *binding) {
	defer r.wg.Done()
	buf := make([]byte, r.cfg.MaxDatagram+1)
	for {
		n, err := b.up.Read(buf)
		if err != nil {
			if b.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// An ICMP port unreachable from the DGS (restarting, or not
			// listening yet) surfaces here; the binding survives it.
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			r.log.Warn("upstream read failed, closing binding", "dgs", b.dgs, "err", err)
			r.closeBinding(b)
			return
		}
		if n > r.cfg.MaxDatagram {
			r.drop(dropTooLarge)
			continue
		}
		b.lastActive.Store(r.nowNanos())
		if err := r.writeTo(buf[:n], *b.client.Load()); err != nil {
			r.drop(dropClientWrite)
			continue
		}
		r.m.downPackets.Inc()
		r.m.downBytes.Add(float64(n))
	}
}

// janitor closes bindings idle in both directions for IdleTimeout.
func (r *Relay) janitor() {
	defer r.wg.Done()
	every := max(r.cfg.IdleTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var idle []*binding
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		cutoff := r.nowNanos() - int64(r.cfg.IdleTimeout)
		idle = idle[:0]
		r.mu.RLock()
		for _, b := range r.byKey {
			if b.lastActive.Load() < cutoff {
				idle = append(idle, b)
			}
		}
		r.mu.RUnlock()
		for _, b := range idle {
			r.log.Debug("binding idle, closing", "session", b.key.session, "player", b.key.player)
			r.closeBinding(b)
		}
	}
}
