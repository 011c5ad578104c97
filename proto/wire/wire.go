package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

// KCP tuning both ends use: fast mode (nodelay, 10 ms interval, fast
// resend after 2 duplicate acks, no congestion window) and windows sized for
// ~30 snapshots/s of up to 4 KB.
const (
	KCPNoDelay      = 1
	KCPInterval     = 10
	KCPResend       = 2
	KCPNoCongestion = 1
	KCPSendWnd      = 128
	KCPRecvWnd      = 256
)

// Type identifies a message. Values are part of the wire format: never
// renumber.
type Type byte

// Message types.
const (
	TypeJoin     Type = 1
	TypeAccept   Type = 2
	TypeInput    Type = 3
	TypeSnapshot Type = 4
	TypeEnd      Type = 5
	TypeRefuse   Type = 6
)

func (t Type) String() string {
	switch t {
	case TypeJoin:
		return "join"
	case TypeAccept:
		return "accept"
	case TypeInput:
		return "input"
	case TypeSnapshot:
		return "snapshot"
	case TypeEnd:
		return "end"
	case TypeRefuse:
		return "refuse"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// MaxFrame is the largest length prefix accepted: a SNAPSHOT of 255 players
// (3 + 5 + 8 + 255×16 bytes) fits.
const MaxFrame = 8 << 10

// MaxPlayers is the most players a match (and so a snapshot) can have.
const MaxPlayers = 255

// NoWinner is End.WinnerSlot on a draw.
const NoWinner = 0xFF

// Q8 is the fixed-point scale of positions and moves: 256 = one arena unit.
const Q8 = 256

// Snapshot entry flags.
const (
	FlagConnected uint8 = 1 << 0 // the player's client is connected
	FlagAlive     uint8 = 1 << 1 // health > 0
)

// RefuseReason says why a JOIN was refused. Values are part of the wire
// format.
type RefuseReason byte

// Refuse reasons.
const (
	RefuseMalformed    RefuseReason = 1 // first frame was not a well-formed JOIN
	RefuseInvalidToken RefuseReason = 2 // bad signature or unknown key
	RefuseExpired      RefuseReason = 3 // token expired
	RefuseWrongSession RefuseReason = 4 // token for another session (or no match running)
	RefuseNotInMatch   RefuseReason = 5 // player not part of the allocation
	RefuseWrongAddress RefuseReason = 6 // token does not match the HELLO seen from this address
	RefuseMatchOver    RefuseReason = 7 // the match already ended
)

func (r RefuseReason) String() string {
	switch r {
	case RefuseMalformed:
		return "malformed"
	case RefuseInvalidToken:
		return "invalid_token"
	case RefuseExpired:
		return "expired"
	case RefuseWrongSession:
		return "wrong_session"
	case RefuseNotInMatch:
		return "not_in_match"
	case RefuseWrongAddress:
		return "wrong_address"
	case RefuseMatchOver:
		return "match_over"
	}
	return fmt.Sprintf("reason(%d)", byte(r))
}

// EndReason says why a match ended. Values are part of the wire format.
type EndReason byte

// End reasons.
const (
	EndScoreLimit EndReason = 1
	EndTimeLimit  EndReason = 2
	EndAbandoned  EndReason = 3
)

func (r EndReason) String() string {
	switch r {
	case EndScoreLimit:
		return "score_limit"
	case EndTimeLimit:
		return "time_limit"
	case EndAbandoned:
		return "abandoned"
	}
	return fmt.Sprintf("reason(%d)", byte(r))
}

// Message is one decoded message.
type Message interface {
	Type() Type
	// AppendBody appends the body (without length prefix and type byte).
	AppendBody(dst []byte) []byte
}

// Join is the first message of a stream.
type Join struct {
	Token []byte // connecttoken.Size bytes
}

// Accept answers a valid JOIN.
type Accept struct {
	Slot         uint8
	TickRate     uint16
	ArenaW       int32 // Q8; the arena is [0, ArenaW] × [0, ArenaH]
	ArenaH       int32
	MaxStep      uint16 // Q8: the longest move accepted per tick
	FireCooldown uint16 // ticks between two shots
	Players      []uuid.UUID
}

// Input is one tick of a player's intent. Seq must increase from one input to
// the next; the server drops inputs whose Seq is not above the last one.
type Input struct {
	Seq  uint32
	DX   int16 // Q8 per tick
	DY   int16
	Fire bool
	Aim  uint16 // 1/65536 turn
}

// PlayerState is one player's line in a snapshot.
type PlayerState struct {
	Slot   uint8
	X, Y   int32 // Q8
	Health uint16
	Score  int32
	Flags  uint8
}

// Snapshot is the authoritative state after a tick.
type Snapshot struct {
	Tick    uint32
	AckSeq  uint32 // last input seq processed for the receiving player
	Players []PlayerState
}

// SlotScore is one player's final score.
type SlotScore struct {
	Slot  uint8
	Score int32
}

// End is the last message of a match.
type End struct {
	Reason     EndReason
	WinnerSlot uint8
	Scores     []SlotScore
}

// Refuse answers an invalid JOIN.
type Refuse struct{ Reason RefuseReason }

// Type implements Message.
func (Join) Type() Type     { return TypeJoin }
func (Accept) Type() Type   { return TypeAccept }
func (Input) Type() Type    { return TypeInput }
func (Snapshot) Type() Type { return TypeSnapshot }
func (End) Type() Type      { return TypeEnd }
func (Refuse) Type() Type   { return TypeRefuse }

// AppendBody implements Message.
func (m Join) AppendBody(dst []byte) []byte { return append(dst, m.Token...) }

// AppendBody implements Message.
func (m Accept) AppendBody(dst []byte) []byte {
	dst = append(dst, m.Slot)
	dst = binary.BigEndian.AppendUint16(dst, m.TickRate)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.ArenaW))
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.ArenaH))
	dst = binary.BigEndian.AppendUint16(dst, m.MaxStep)
	dst = binary.BigEndian.AppendUint16(dst, m.FireCooldown)
	dst = append(dst, byte(len(m.Players)))
	for _, p := range m.Players {
		dst = append(dst, p[:]...)
	}
	return dst
}

// AppendBody implements Message.
func (m Input) AppendBody(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, m.Seq)
	dst = binary.BigEndian.AppendUint16(dst, uint16(m.DX))
	dst = binary.BigEndian.AppendUint16(dst, uint16(m.DY))
	dst = append(dst, boolByte(m.Fire))
	return binary.BigEndian.AppendUint16(dst, m.Aim)
}

// AppendBody implements Message.
func (m Snapshot) AppendBody(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, m.Tick)
	dst = binary.BigEndian.AppendUint32(dst, m.AckSeq)
	dst = append(dst, byte(len(m.Players)))
	for _, p := range m.Players {
		dst = append(dst, p.Slot)
		dst = binary.BigEndian.AppendUint32(dst, uint32(p.X))
		dst = binary.BigEndian.AppendUint32(dst, uint32(p.Y))
		dst = binary.BigEndian.AppendUint16(dst, p.Health)
		dst = binary.BigEndian.AppendUint32(dst, uint32(p.Score))
		dst = append(dst, p.Flags)
	}
	return dst
}

// AppendBody implements Message.
func (m End) AppendBody(dst []byte) []byte {
	dst = append(dst, byte(m.Reason), m.WinnerSlot, byte(len(m.Scores)))
	for _, s := range m.Scores {
		dst = append(dst, s.Slot)
		dst = binary.BigEndian.AppendUint32(dst, uint32(s.Score))
	}
	return dst
}

// AppendBody implements Message.
func (m Refuse) AppendBody(dst []byte) []byte { return append(dst, byte(m.Reason)) }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Body sizes.
const (
	acceptFixedLen   = 1 + 2 + 4 + 4 + 2 + 2 + 1
	inputLen         = 4 + 2 + 2 + 1 + 2
	snapshotFixedLen = 4 + 4 + 1
	// SnapshotEntryLen is the size of one PlayerState on the wire.
	SnapshotEntryLen = 1 + 4 + 4 + 2 + 4 + 1
	endFixedLen      = 3
	endEntryLen      = 5
)

// SnapshotAckSeqOffset is the offset of AckSeq in a SNAPSHOT frame (length
// prefix and type included), so a server can encode a snapshot once and
// patch the per-player ack.
const SnapshotAckSeqOffset = 2 + 1 + 4

// AppendFrame appends m as one frame (length prefix, type, body) to dst.
func AppendFrame(dst []byte, m Message) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, byte(m.Type()))
	dst = m.AppendBody(dst)
	binary.BigEndian.PutUint16(dst[start:], uint16(len(dst)-start-2))
	return dst
}

// Decode decodes one frame's content: the type byte followed by the body.
// It never panics; anything not exactly in the format is ErrMalformed.
// Slices in the result never alias b.
func Decode(b []byte) (Message, error) {
	if len(b) < 1 {
		return nil, ErrMalformed
	}
	t, body := Type(b[0]), b[1:]
	switch t {
	case TypeJoin:
		if len(body) != connecttoken.Size {
			return nil, fmt.Errorf("%w: join of %d bytes", ErrMalformed, len(body))
		}
		return Join{Token: append([]byte(nil), body...)}, nil
	case TypeAccept:
		return decodeAccept(body)
	case TypeInput:
		in, err := DecodeInput(body)
		if err != nil {
			return nil, err
		}
		return in, nil
	case TypeSnapshot:
		return decodeSnapshot(body)
	case TypeEnd:
		return decodeEnd(body)
	case TypeRefuse:
		if len(body) != 1 {
			return nil, ErrMalformed
		}
		return Refuse{Reason: RefuseReason(body[0])}, nil
	}
	return nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, b[0])
}

// DecodeInput decodes an INPUT body without allocating (the server's hot path).
func DecodeInput(body []byte) (Input, error) {
	if len(body) != inputLen || body[8] > 1 {
		return Input{}, ErrMalformed
	}
	return Input{
		Seq:  binary.BigEndian.Uint32(body),
		DX:   int16(binary.BigEndian.Uint16(body[4:])),
		DY:   int16(binary.BigEndian.Uint16(body[6:])),
		Fire: body[8] == 1,
		Aim:  binary.BigEndian.Uint16(body[9:]),
	}, nil
}

func decodeAccept(body []byte) (Message, error) {
	if len(body) < acceptFixedLen {
		return nil, ErrMalformed
	}
	n := int(body[acceptFixedLen-1])
	if len(body) != acceptFixedLen+16*n {
		return nil, ErrMalformed
	}
	m := Accept{
		Slot:         body[0],
		TickRate:     binary.BigEndian.Uint16(body[1:]),
		ArenaW:       int32(binary.BigEndian.Uint32(body[3:])),
		ArenaH:       int32(binary.BigEndian.Uint32(body[7:])),
		MaxStep:      binary.BigEndian.Uint16(body[11:]),
		FireCooldown: binary.BigEndian.Uint16(body[13:]),
		Players:      make([]uuid.UUID, n),
	}
	for i := range m.Players {
		copy(m.Players[i][:], body[acceptFixedLen+16*i:])
	}
	return m, nil
}

func decodeSnapshot(body []byte) (Message, error) {
	if len(body) < snapshotFixedLen {
		return nil, ErrMalformed
	}
	n := int(body[8])
	if len(body) != snapshotFixedLen+SnapshotEntryLen*n {
		return nil, ErrMalformed
	}
	m := Snapshot{
		Tick:    binary.BigEndian.Uint32(body),
		AckSeq:  binary.BigEndian.Uint32(body[4:]),
		Players: make([]PlayerState, n),
	}
	for i := range m.Players {
		e := body[snapshotFixedLen+SnapshotEntryLen*i:]
		m.Players[i] = PlayerState{
			Slot:   e[0],
			X:      int32(binary.BigEndian.Uint32(e[1:])),
			Y:      int32(binary.BigEndian.Uint32(e[5:])),
			Health: binary.BigEndian.Uint16(e[9:]),
			Score:  int32(binary.BigEndian.Uint32(e[11:])),
			Flags:  e[15],
		}
	}
	return m, nil
}

func decodeEnd(body []byte) (Message, error) {
	if len(body) < endFixedLen {
		return nil, ErrMalformed
	}
	n := int(body[2])
	if len(body) != endFixedLen+endEntryLen*n {
		return nil, ErrMalformed
	}
	m := End{Reason: EndReason(body[0]), WinnerSlot: body[1], Scores: make([]SlotScore, n)}
	for i := range m.Scores {
		e := body[endFixedLen+endEntryLen*i:]
		m.Scores[i] = SlotScore{Slot: e[0], Score: int32(binary.BigEndian.Uint32(e[1:]))}
	}
	return m, nil
}

// ReadFrame reads one frame from r and returns its content (type byte and
// body) in buf's storage when it fits (buf should have MaxFrame capacity);
// the result is valid until the next call.
func ReadFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
