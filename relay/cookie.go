package relay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/cellgrid/cellgrid/proto/packet"
)

// CHALLENGE cookies are stateless: 8 bytes of issue time (Unix milliseconds,
// big endian), then the first 16 bytes of HMAC-SHA256 under the Relay's
// random key over that time, the address the cookie was sent to (16-byte
// IPv6 form and port), the binding's session and player, and the token's
// nonce. A cookie is good for ChallengeTTL, for that address and that token
// only.

func (r *Relay) cookieMAC(issued []byte, to netip.AddrPort, key bindingKey, nonce [16]byte) []byte {
	m := hmac.New(sha256.New, r.cookieKey[:])
	m.Write(issued)
	ip := to.Addr().Unmap().As16()
	m.Write(ip[:])
	m.Write(binary.BigEndian.AppendUint16(nil, to.Port()))
	m.Write(key.session[:])
	m.Write(key.player[:])
	m.Write(nonce[:])
	return m.Sum(nil)[:packet.CookieLen-8]
}

func (r *Relay) makeCookie(to netip.AddrPort, key bindingKey, nonce [16]byte, now time.Time) packet.Cookie {
	var c packet.Cookie
	binary.BigEndian.PutUint64(c[:8], uint64(now.UnixMilli()))
	copy(c[8:], r.cookieMAC(c[:8], to, key, nonce))
	return c
}

func (r *Relay) cookieValid(c packet.Cookie, from netip.AddrPort, key bindingKey, nonce [16]byte, now time.Time) bool {
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(c[:8])))
	if issued.After(now) || now.Sub(issued) > r.cfg.ChallengeTTL {
		return false
	}
	return hmac.Equal(c[8:], r.cookieMAC(c[:8], from, key, nonce))
}
