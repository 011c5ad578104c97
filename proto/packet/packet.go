package packet

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

// Control packet wire format (all integers big endian):
//
//	0  4 bytes  Magic: 0xC3 'C' 'G' 'R'
//	4  1 byte   PacketType
//	5  ...      body, by type:
//
//	HELLO    connect token, exactly connecttoken.Size (147) bytes
//	WELCOME  16-byte session id the binding belongs to
//	REJECT   1-byte RejectReason
//	PING     8-byte client timestamp, then optionally an 8-byte sequence
//	         number, then 8 zero bytes of reply room
//	PONG     the PING body without its reply room (8 or 16 bytes), then the
//	         8-byte relay receive time in Unix nanoseconds: exactly as long
//	         as the PING, so the beacon never amplifies
//	CHALLENGE  24-byte cookie the relay sends to a new address before it
//	         moves a binding there (return routability)
//	HELLO_COOKIE  connect token (147 bytes), then the 24-byte cookie of the
//	         CHALLENGE that address received
//
// Anything else (other lengths, unknown types) is malformed and dropped.
//
// # Collision with KCP
//
// A KCP segment starts with its 4-byte conversation id, which kcp-go writes
// little endian. A datagram is a control packet iff its first four bytes are
// Magic, so the game protocol must never use the conversation id ReservedConv
// (0x524743C3, i.e. the little-endian reading of Magic). Client SDK and DGS
// pick conv ids with that one value excluded; the relay then never mistakes
// game traffic for control traffic and never has to decode KCP.
var Magic = [4]byte{0xC3, 'C', 'G', 'R'}

// ReservedConv is the KCP conversation id whose little-endian encoding is
// Magic. Clients and game servers must never use it.
const ReservedConv uint32 = 0x524743C3

// ControlHeaderLen is the length of Magic plus the type byte.
const ControlHeaderLen = 5

// PacketType identifies a control packet.
type PacketType byte

// Control packet types.
const (
	TypeHello   PacketType = 1 // client → relay (and relay → DGS, forwarded)
	TypeWelcome PacketType = 2 // relay → client: bound
	TypeReject  PacketType = 3 // relay → client: not bound, see RejectReason
	TypePing    PacketType = 4 // anyone → relay: latency beacon
	TypePong    PacketType = 5 // relay → sender of PING
	// TypeChallenge: relay → a new client address. Moving a binding needs
	// the cookie echoed from that address in a TypeHelloCookie.
	TypeChallenge   PacketType = 6
	TypeHelloCookie PacketType = 7 // client → relay: HELLO plus the echoed cookie
)

func (t PacketType) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeWelcome:
		return "welcome"
	case TypeReject:
		return "reject"
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeChallenge:
		return "challenge"
	case TypeHelloCookie:
		return "hello_cookie"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// RejectReason says why a HELLO did not bind. Values are part of the wire
// format: never renumber.
type RejectReason byte

// Reject reasons.
const (
	RejectMalformed      RejectReason = 1 // not a token of a known version
	RejectInvalidToken   RejectReason = 2 // unknown key or bad signature
	RejectExpired        RejectReason = 3 // token expired (and no binding to move)
	RejectReplayed       RejectReason = 4 // nonce already used and no binding to move
	RejectSessionNotLive RejectReason = 5 // the game session is over or unknown
	RejectOverloaded     RejectReason = 6 // MaxBindings reached: try another relay/cell
	RejectUnavailable    RejectReason = 7 // session/replay store error or upstream unusable: retry
	RejectForbidden      RejectReason = 8 // token's server address outside Config.AllowedUpstreams
)

func (r RejectReason) String() string {
	switch r {
	case RejectMalformed:
		return "malformed"
	case RejectInvalidToken:
		return "invalid_token"
	case RejectExpired:
		return "expired"
	case RejectReplayed:
		return "replayed"
	case RejectSessionNotLive:
		return "session_not_live"
	case RejectOverloaded:
		return "overloaded"
	case RejectUnavailable:
		return "unavailable"
	case RejectForbidden:
		return "forbidden"
	}
	return fmt.Sprintf("reason(%d)", byte(r))
}

// Ping is the body of a PING, echoed unchanged in the PONG. The relay never
// interprets ClientTime; it is whatever clock the client wants back.
type Ping struct {
	ClientTime uint64
	Seq        uint64
	HasSeq     bool // Seq is on the wire only when HasSeq is true
}

// CookieLen is the length of a CHALLENGE cookie.
const CookieLen = 24

// Cookie is a CHALLENGE cookie. It is opaque to clients: echo it unchanged.
type Cookie [CookieLen]byte

// Control is a parsed control packet. Only the fields of its Type are set.
type Control struct {
	Type      PacketType
	Token     []byte       // HELLO, HELLO_COOKIE: aliases the parsed buffer, copy to keep
	Cookie    Cookie       // CHALLENGE, HELLO_COOKIE
	SessionID uuid.UUID    // WELCOME
	Reason    RejectReason // REJECT
	Ping      Ping         // PING, PONG
	RelayTime uint64       // PONG: relay receive time, Unix nanoseconds
}

// Errors returned by ParseControl.
var (
	// ErrNotControl means the datagram does not start with Magic: it is game
	// traffic (or garbage).
	ErrNotControl = errors.New("relay: not a control packet")
	// ErrMalformedControl means the datagram starts with Magic but its type or
	// length is wrong.
	ErrMalformedControl = errors.New("relay: malformed control packet")
)

// IsControl reports whether b starts with Magic and has room for a type.
// It does not validate the body.
func IsControl(b []byte) bool {
	return len(b) >= ControlHeaderLen &&
		b[0] == Magic[0] && b[1] == Magic[1] && b[2] == Magic[2] && b[3] == Magic[3]
}

// Lengths of the control packets.
const (
	PingRoom       = 8 // zero bytes at the end of a PING: room for the relay time
	PingLen        = ControlHeaderLen + 8 + PingRoom
	PingSeqLen     = ControlHeaderLen + 16 + PingRoom
	HelloLen       = ControlHeaderLen + connecttoken.Size
	WelcomeLen     = ControlHeaderLen + 16
	RejectLen      = ControlHeaderLen + 1
	PongLen        = PingLen    // a PONG is never longer than its PING
	PongSeqLen     = PingSeqLen // ditto
	ChallengeLen   = ControlHeaderLen + CookieLen
	HelloCookieLen = HelloLen + CookieLen
	MaxLen         = HelloCookieLen // the longest control packet
)

func appendHeader(dst []byte, t PacketType) []byte {
	return append(append(dst, Magic[:]...), byte(t))
}

// AppendHello appends a HELLO carrying token to dst.
func AppendHello(dst, token []byte) []byte {
	return append(appendHeader(dst, TypeHello), token...)
}

// AppendWelcome appends a WELCOME for sessionID to dst.
func AppendWelcome(dst []byte, sessionID uuid.UUID) []byte {
	return append(appendHeader(dst, TypeWelcome), sessionID[:]...)
}

// AppendReject appends a REJECT with reason to dst.
func AppendReject(dst []byte, reason RejectReason) []byte {
	return append(appendHeader(dst, TypeReject), byte(reason))
}

// AppendPing appends a PING, reply room included, to dst.
func AppendPing(dst []byte, p Ping) []byte {
	dst = binary.BigEndian.AppendUint64(appendHeader(dst, TypePing), p.ClientTime)
	if p.HasSeq {
		dst = binary.BigEndian.AppendUint64(dst, p.Seq)
	}
	return append(dst, make([]byte, PingRoom)...)
}

// AppendChallenge appends a CHALLENGE carrying cookie to dst.
func AppendChallenge(dst []byte, cookie Cookie) []byte {
	return append(appendHeader(dst, TypeChallenge), cookie[:]...)
}

// AppendHelloCookie appends a HELLO_COOKIE: token, then the echoed cookie.
func AppendHelloCookie(dst, token []byte, cookie Cookie) []byte {
	return append(append(appendHeader(dst, TypeHelloCookie), token...), cookie[:]...)
}

// AppendPong appends the PONG answering p, stamped with relayTime (Unix
// nanoseconds), to dst.
func AppendPong(dst []byte, p Ping, relayTime uint64) []byte {
	dst = binary.BigEndian.AppendUint64(appendHeader(dst, TypePong), p.ClientTime)
	if p.HasSeq {
		dst = binary.BigEndian.AppendUint64(dst, p.Seq)
	}
	return binary.BigEndian.AppendUint64(dst, relayTime)
}

// ParseControl parses a control packet. It returns ErrNotControl for
// datagrams that do not start with Magic and ErrMalformedControl for control
// packets of unknown type or wrong length. It never allocates; Control.Token
// aliases b.
func ParseControl(b []byte) (Control, error) {
	if !IsControl(b) {
		return Control{}, ErrNotControl
	}
	c := Control{Type: PacketType(b[4])}
	body := b[ControlHeaderLen:]
	switch c.Type {
	case TypeHello:
		if len(b) != HelloLen {
			return Control{}, ErrMalformedControl
		}
		c.Token = body
	case TypeWelcome:
		if len(b) != WelcomeLen {
			return Control{}, ErrMalformedControl
		}
		copy(c.SessionID[:], body)
	case TypeReject:
		if len(b) != RejectLen {
			return Control{}, ErrMalformedControl
		}
		c.Reason = RejectReason(body[0])
	case TypePing:
		switch len(b) {
		case PingLen:
		case PingSeqLen:
			c.Ping.HasSeq = true
			c.Ping.Seq = binary.BigEndian.Uint64(body[8:])
		default:
			return Control{}, ErrMalformedControl
		}
		if binary.BigEndian.Uint64(b[len(b)-PingRoom:]) != 0 {
			return Control{}, ErrMalformedControl
		}
		c.Ping.ClientTime = binary.BigEndian.Uint64(body)
	case TypeChallenge:
		if len(b) != ChallengeLen {
			return Control{}, ErrMalformedControl
		}
		copy(c.Cookie[:], body)
	case TypeHelloCookie:
		if len(b) != HelloCookieLen {
			return Control{}, ErrMalformedControl
		}
		c.Token = body[:connecttoken.Size]
		copy(c.Cookie[:], body[connecttoken.Size:])
	case TypePong:
		switch len(b) {
		case PongLen:
		case PongSeqLen:
			c.Ping.HasSeq = true
			c.Ping.Seq = binary.BigEndian.Uint64(body[8:])
		default:
			return Control{}, ErrMalformedControl
		}
		c.Ping.ClientTime = binary.BigEndian.Uint64(body)
		c.RelayTime = binary.BigEndian.Uint64(b[len(b)-8:])
	default:
		return Control{}, ErrMalformedControl
	}
	return c, nil
}
