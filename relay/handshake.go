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
	b         *binding
	outcome   string
	reason    packet.RejectReason
	challenge *packet.Cookie // set when the sender must echo it first
}

func rejected(reason packet.RejectReason) helloResult {
	return helloResult{outcome: reason.String(), reason: reason}
}

// handleHello runs in the read loop: it applies the per-source limits and
// the cheap token checks (size, version, key id, expiry) before a HELLO may
// take a slot in the handshake queue, so a flood of forged or stale HELLOs
// costs neither Ed25519 work nor a store round trip, and a bound client's
// datagrams (served by this same loop) keep flowing.
func (r *Relay) handleHello(b, token []byte, from netip.AddrPort, now time.Time) {
	if !r.helloAddr.Allow(from, now) || !r.helloIP.Allow(from.Addr(), now) {
		r.drop(dropHelloLimited)
		return
	}
	r.mu.RLock()
	bnd := r.byAddr[from]
	r.mu.RUnlock()
	if bnd != nil && !bnd.allow(now, len(b)) {
		r.drop(dropRateLimited)
		return
	}
	tok, err := r.verifier.Precheck(token, now.Add(-r.cfg.TokenLeeway))
	switch {
	case err == nil:
	case errors.Is(err, connecttoken.ErrExpired):
		// Only the token of a live binding may still move it (checked
		// again, with the signature, by the worker).
		if !r.boundByToken(bindingKey{tok.SessionID, tok.PlayerID}, tok.Nonce) {
			r.rejectEarly(from, packet.RejectExpired)
			return
		}
	case errors.Is(err, connecttoken.ErrUnknownKey):
		r.rejectEarly(from, packet.RejectInvalidToken)
		return
	default:
		r.rejectEarly(from, packet.RejectMalformed)
		return
	}
	req := helloReq{from: from, n: len(b)}
	copy(req.pkt[:], b)
	select {
	case r.hellos <- req:
	default:
		r.drop(dropHandshakeQueue)
	}
}

// rejectEarly answers a HELLO refused by the read loop. A REJECT is shorter
// than any HELLO, so it amplifies nothing.
func (r *Relay) rejectEarly(from netip.AddrPort, reason packet.RejectReason) {
	r.m.hellos.WithLabelValues(reason.String()).Inc()
	if err := r.writeTo(packet.AppendReject(nil, reason), from); err != nil {
		r.drop(dropClientWrite)
	}
}

func (r *Relay) handshakeWorker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case req := <-r.hellos:
			r.answerHello(req.from, req.pkt[:req.n])
		}
	}
}

// answerHello runs the handshake for one HELLO or HELLO_COOKIE and answers
// the sender. On success a HELLO carrying the token is forwarded to the DGS
// through the binding's upstream socket before WELCOME goes out, so the DGS
// sees it before any KCP from the client.
func (r *Relay) answerHello(from netip.AddrPort, pkt []byte) {
	c, err := packet.ParseControl(pkt)
	if err != nil {
		return // the read loop parsed it already
	}
	var cookie *packet.Cookie
	if c.Type == packet.TypeHelloCookie {
		cookie = &c.Cookie
	}
	res := r.hello(from, c.Token, cookie)
	r.m.hellos.WithLabelValues(res.outcome).Inc()
	if res.challenge != nil {
		r.log.Debug("hello challenged", "from", from)
		if err := r.writeTo(packet.AppendChallenge(nil, *res.challenge), from); err != nil {
			r.drop(dropClientWrite)
		}
		return
	}
	if res.b == nil {
		r.log.Debug("hello rejected", "from", from, "reason", res.reason)
		if err := r.writeTo(packet.AppendReject(nil, res.reason), from); err != nil {
			r.drop(dropClientWrite)
		}
		return
	}
	r.log.Debug("hello accepted", "from", from, "outcome", res.outcome,
		"session", res.b.key.session, "player", res.b.key.player)
	if _, err := res.b.up.Write(packet.AppendHello(nil, c.Token)); err != nil {
		r.drop(dropUpstreamWrite)
	}
	if err := r.writeTo(packet.AppendWelcome(nil, res.b.key.session), from); err != nil {
		r.drop(dropClientWrite)
	}
}

// hello decides what a HELLO carrying token (and the echoed cookie of a
// HELLO_COOKIE, else nil) does. See the package doc for the replay,
// rebinding and return-routability rules.
func (r *Relay) hello(from netip.AddrPort, token []byte, cookie *packet.Cookie) helloResult {
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

	// Return routability: a binding moves to a new address only once that
	// address has echoed a cookie sent to it, so a HELLO replayed from a
	// spoofed source cannot redirect a player's traffic to a third party.
	if b := r.bindingFor(key); b != nil && b.dgs == tok.ServerAddr && *b.client.Load() != from &&
		(cookie == nil || !r.cookieValid(*cookie, from, key, tok.Nonce, now)) {
		ck := r.makeCookie(from, key, tok.Nonce, now)
		return helloResult{outcome: helloChallenged, challenge: &ck}
	}

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

// boundByToken reports whether the token with nonce created or last moved
// the binding of key.
func (r *Relay) boundByToken(key bindingKey, nonce [16]byte) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b := r.byKey[key]
	return b != nil && b.nonce == nonce
}

func (r *Relay) bindingFor(key bindingKey) *binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byKey[key]
}
