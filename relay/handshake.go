package relay

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/packet"
)

// helloResult is what a HELLO led to: the binding that now carries the
// sender (nil when rejected), the metric outcome and the reject reason.
type helloResult struct {
	b       *binding
	outcome string
	reason  packet.RejectReason
}

func rejected(reason packet.RejectReason) helloResult {
	return helloResult{outcome: reason.String(), reason: reason}
}

func (r *Relay) handshakeWorker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case req := <-r.hellos:
			r.answerHello(req.from, req.pkt[:])
		}
	}
}

// answerHello runs the handshake for one HELLO and answers the sender. On
// success the HELLO is forwarded to the DGS through the binding's upstream
// socket before WELCOME goes out, so the DGS sees it before any KCP from the
// client.
func (r *Relay) answerHello(from netip.AddrPort, pkt []byte) {
	res := r.hello(from, pkt[packet.ControlHeaderLen:])
	r.m.hellos.WithLabelValues(res.outcome).Inc()
	if res.b == nil {
		r.log.Debug("hello rejected", "from", from, "reason", res.reason)
		if err := r.writeTo(packet.AppendReject(nil, res.reason), from); err != nil {
			r.drop(dropClientWrite)
		}
		return
	}
	r.log.Debug("hello accepted", "from", from, "outcome", res.outcome,
		"session", res.b.key.session, "player", res.b.key.player)
	if _, err := res.b.up.Write(pkt); err != nil {
		r.drop(dropUpstreamWrite)
	}
	if err := r.writeTo(packet.AppendWelcome(nil, res.b.key.session), from); err != nil {
		r.drop(dropClientWrite)
	}
}

// hello decides what a HELLO carrying token does. See the package doc for
// the replay and rebinding rules.
func (r *Relay) hello(from netip.AddrPort, token []byte) helloResult {
	now := r.cfg.Now()
	tok, err := r.verifier.Verify(token, now.Add(-r.cfg.TokenLeeway))
	expired := false
	switch {
	case err == nil:
	case errors.Is(err, connecttoken.ErrExpired):
		// The signature is good (Verify checks it first): an expired token
		// may still move the binding it created.
		expired = true
		if tok, err = connecttoken.Parse(token); err != nil {
			return rejected(packet.RejectMalformed)
		}
	case errors.Is(err, connecttoken.ErrMalformed):
		return rejected(packet.RejectMalformed)
	default:
		return rejected(packet.RejectInvalidToken)
	}
	if !r.upstreamAllowed(tok.ServerAddr) {
		return rejected(packet.RejectForbidden)
	}
	key := bindingKey{session: tok.SessionID, player: tok.PlayerID}

	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.HandshakeTimeout)
	defer cancel()
	live, err := r.sessions.SessionLive(ctx, tok.SessionID)
	if err != nil {
		r.log.Warn("session check failed", "session", tok.SessionID, "err", err)
		return rejected(packet.RejectUnavailable)
	}
	if !live {
		return rejected(packet.RejectSessionNotLive)
	}

	// The token that created (or last moved) the live binding of this
	// (session, player) may move it again: NAT rebinding, or a HELLO
	// retransmitted because WELCOME was lost.
	if res, ok := r.moveIfSameToken(key, tok.Nonce, tok.ServerAddr, from); ok {
		return res
	}
	if expired {
		return rejected(packet.RejectExpired)
	}
	if r.bindingCount() >= r.cfg.MaxBindings && r.bindingFor(key) == nil {
		return rejected(packet.RejectOverloaded)
	}

	// Open the upstream socket before spending the nonce, so a local failure
	// does not burn the client's token.
	up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(tok.ServerAddr))
	if err != nil {
		r.log.Warn("dial upstream failed", "dgs", tok.ServerAddr, "err", err)
		return rejected(packet.RejectUnavailable)
	}
	ttl := max(tok.ExpiresAt.Sub(now)+r.cfg.TokenLeeway, time.Millisecond)
	first, err := r.replay.FirstUse(ctx, tok.Nonce, ttl)
	if err != nil {
		up.Close()
		r.log.Warn("replay check failed", "err", err)
		return rejected(packet.RejectUnavailable)
	}
	if !first {
		up.Close()
		return rejected(packet.RejectReplayed)
	}

	b := &binding{
		key:     key,
		up:      up,
		dgs:     tok.ServerAddr,
		nonce:   tok.Nonce,
		packets: rate.NewLimiter(rate.Limit(r.cfg.PacketsPerSecond), r.cfg.PacketBurst),
		bytes:   rate.NewLimiter(rate.Limit(r.cfg.BytesPerSecond), r.cfg.ByteBurst),
	}
	client := from
	b.client.Store(&client)
	b.lastActive.Store(r.nowNanos())
	return r.register(b)
}

// moveIfSameToken moves the binding of key to from when it was created or
// last moved by the token with nonce and still goes to dgs.
func (r *Relay) moveIfSameToken(key bindingKey, nonce [16]byte, dgs, from netip.AddrPort) (helloResult, bool) {
	r.mu.Lock()
	b := r.byKey[key]
	if b == nil || b.closed.Load() || b.nonce != nonce || b.dgs != dgs || r.closing {
		r.mu.Unlock()
		return helloResult{}, false
	}
	outcome, evicted := r.moveLocked(b, from)
	r.mu.Unlock()
	if evicted != nil {
		r.closeBinding(evicted)
	}
	return helloResult{b: b, outcome: outcome}, true
}

// moveLocked points from at b. A different binding that held from loses it
// and is returned to be closed: one address carries one binding.
func (r *Relay) moveLocked(b *binding, from netip.AddrPort) (outcome string, evicted *binding) {
	old := *b.client.Load()
	b.lastActive.Store(r.nowNanos())
	if old == from {
		return helloRepeat, nil
	}
	if other := r.byAddr[from]; other != nil && other != b {
		evicted = other
	}
	delete(r.byAddr, old)
	r.byAddr[from] = b
	b.client.Store(&from)
	return helloMoved, evicted
}

// register installs a new binding and starts its downstream pump. A binding
// of the same (session, player) to the same DGS is moved instead (a fresh
// token for a player already bound): the DGS keeps seeing one address per
// player. One to another DGS is replaced.
func (r *Relay) register(b *binding) helloResult {
	from := *b.client.Load()
	var evict []*binding
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		b.up.Close()
		return rejected(packet.RejectUnavailable)
	}
	if old := r.byKey[b.key]; old != nil {
		if old.dgs == b.dgs {
			old.nonce = b.nonce
			outcome, evicted := r.moveLocked(old, from)
			r.mu.Unlock()
			b.up.Close()
			if evicted != nil {
				r.closeBinding(evicted)
			}
			if outcome == helloRepeat {
				outcome = helloMoved // a new token took over the binding
			}
			return helloResult{b: old, outcome: outcome}
		}
		evict = append(evict, old)
	}
	if len(r.byKey)-len(evict) >= r.cfg.MaxBindings {
		r.mu.Unlock()
		b.up.Close()
		return rejected(packet.RejectOverloaded)
	}
	if other := r.byAddr[from]; other != nil {
		evict = append(evict, other)
	}
	r.byKey[b.key] = b
	r.byAddr[from] = b
	r.wg.Add(1)
	r.mu.Unlock()

	r.m.bound.Inc()
	go r.pumpDownstream(b)
	for _, e := range evict {
		r.closeBinding(e)
	}
	return helloResult{b: b, outcome: helloBound}
}

func (r *Relay) upstreamAllowed(ap netip.AddrPort) bool {
	if !ap.IsValid() || ap.Port() == 0 {
		return false
	}
	if len(r.cfg.AllowedUpstreams) == 0 {
		return true
	}
	for _, p := range r.cfg.AllowedUpstreams {
		if p.Contains(ap.Addr()) {
			return true
		}
	}
	return false
}

func (r *Relay) bindingCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byKey)
}

func (r *Relay) bindingFor(key bindingKey) *binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byKey[key]
}
