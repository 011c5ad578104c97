package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

func TestReservedConvIsMagic(t *testing.T) {
	var kcp [4]byte
	binary.LittleEndian.PutUint32(kcp[:], ReservedConv) // kcp-go writes conv little endian
	if kcp != Magic {
		t.Fatalf("ReservedConv encodes to % x, Magic is % x", kcp, Magic)
	}
	seg := binary.LittleEndian.AppendUint32(nil, ReservedConv+1)
	seg = append(seg, make([]byte, 20)...)
	if IsControl(seg) {
		t.Fatal("a KCP segment with another conv is taken for control")
	}
}

func TestControlRoundTrip(t *testing.T) {
	token := bytes.Repeat([]byte{7}, connecttoken.Size)
	sid := uuid.New()
	cases := []struct {
		name string
		pkt  []byte
		want Control
	}{
		{"hello", AppendHello(nil, token), Control{Type: TypeHello, Token: token}},
		{"welcome", AppendWelcome(nil, sid), Control{Type: TypeWelcome, SessionID: sid}},
		{"reject", AppendReject(nil, RejectReplayed), Control{Type: TypeReject, Reason: RejectReplayed}},
		{"ping", AppendPing(nil, Ping{ClientTime: 42}), Control{Type: TypePing, Ping: Ping{ClientTime: 42}}},
		{"ping seq", AppendPing(nil, Ping{ClientTime: 42, Seq: 9, HasSeq: true}),
			Control{Type: TypePing, Ping: Ping{ClientTime: 42, Seq: 9, HasSeq: true}}},
		{"pong", AppendPong(nil, Ping{ClientTime: 1}, 77), Control{Type: TypePong, Ping: Ping{ClientTime: 1}, RelayTime: 77}},
		{"pong seq", AppendPong(nil, Ping{ClientTime: 1, Seq: 3, HasSeq: true}, 77),
			Control{Type: TypePong, Ping: Ping{ClientTime: 1, Seq: 3, HasSeq: true}, RelayTime: 77}},
		{"challenge", AppendChallenge(nil, Cookie{1, 2, 23: 9}), Control{Type: TypeChallenge, Cookie: Cookie{1, 2, 23: 9}}},
		{"hello cookie", AppendHelloCookie(nil, token, Cookie{5, 23: 6}),
			Control{Type: TypeHelloCookie, Token: token, Cookie: Cookie{5, 23: 6}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseControl(c.pkt)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Token, c.want.Token) {
				t.Fatalf("token differs")
			}
			got.Token, c.want.Token = nil, nil
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestPongEchoesPingBytes(t *testing.T) {
	ping := AppendPing(nil, Ping{ClientTime: 0x0102030405060708, Seq: 5, HasSeq: true})
	pong := AppendPong(nil, Ping{ClientTime: 0x0102030405060708, Seq: 5, HasSeq: true}, 99)
	if !bytes.Equal(pong[ControlHeaderLen:len(ping)-PingRoom], ping[ControlHeaderLen:len(ping)-PingRoom]) {
		t.Fatal("PONG body does not start with the PING body")
	}
}

// A beacon must not amplify: the PONG answering any PING that parses is no
// longer than that PING.
func TestPongNeverLargerThanPing(t *testing.T) {
	for _, p := range []Ping{{ClientTime: 1}, {ClientTime: 1, Seq: 2, HasSeq: true}} {
		ping := AppendPing(nil, p)
		c, err := ParseControl(ping)
		if err != nil {
			t.Fatal(err)
		}
		if pong := AppendPong(nil, c.Ping, 1<<63); len(pong) > len(ping) {
			t.Fatalf("PING of %d bytes is answered by a PONG of %d bytes", len(ping), len(pong))
		}
	}
	// The short PINGs of the first protocol draft (no reply room) are refused.
	short := binary.BigEndian.AppendUint64(append(Magic[:], byte(TypePing)), 1)
	if _, err := ParseControl(short); !errors.Is(err, ErrMalformedControl) {
		t.Fatalf("PING without reply room: %v, want malformed", err)
	}
}

func TestParseControlRejects(t *testing.T) {
	cases := map[string]struct {
		pkt  []byte
		want error
	}{
		"empty":                  {nil, ErrNotControl},
		"magic only":             {Magic[:], ErrNotControl},
		"kcp":                    {[]byte{1, 0, 0, 0, 81, 0, 0, 0}, ErrNotControl},
		"unknown type":           {append(Magic[:], 99), ErrMalformedControl},
		"short hello":            {AppendHello(nil, make([]byte, 10)), ErrMalformedControl},
		"long reject":            {append(AppendReject(nil, 1), 0), ErrMalformedControl},
		"ping 9 bytes":           {append(AppendPing(nil, Ping{}), 1), ErrMalformedControl},
		"ping room set":          {append(AppendPing(nil, Ping{})[:PingLen-1], 1), ErrMalformedControl},
		"short challenge":        {AppendChallenge(nil, Cookie{})[:ChallengeLen-1], ErrMalformedControl},
		"hello cookie no cookie": {append(append(Magic[:], byte(TypeHelloCookie)), make([]byte, connecttoken.Size)...), ErrMalformedControl},
		"pong too long":          {append(AppendPong(nil, Ping{HasSeq: true}, 1), 1), ErrMalformedControl},
	}
	for name, c := range cases {
		if _, err := ParseControl(c.pkt); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
}

func TestParseControlDoesNotAllocate(t *testing.T) {
	pkts := [][]byte{AppendHello(nil, make([]byte, connecttoken.Size)), AppendPing(nil, Ping{HasSeq: true}),
		AppendHelloCookie(nil, make([]byte, connecttoken.Size), Cookie{}), {1, 2, 3, 4, 5, 6}}
	if n := testing.AllocsPerRun(100, func() {
		for _, p := range pkts {
			ParseControl(p)
		}
	}); n != 0 {
		t.Fatalf("ParseControl allocates %v times", n)
	}
}

// FuzzParseControl checks that parsing never panics, that whatever parses
// re-encodes to the same bytes, and that IsControl agrees with ParseControl.
func FuzzParseControl(f *testing.F) {
	f.Add(AppendHello(nil, make([]byte, connecttoken.Size)))
	f.Add(AppendWelcome(nil, uuid.UUID{1}))
	f.Add(AppendReject(nil, RejectExpired))
	f.Add(AppendPing(nil, Ping{ClientTime: 1, Seq: 2, HasSeq: true}))
	f.Add(AppendPong(nil, Ping{ClientTime: 1}, 3))
	f.Add(AppendChallenge(nil, Cookie{1, 23: 2}))
	f.Add(AppendHelloCookie(nil, make([]byte, connecttoken.Size), Cookie{3}))
	f.Add([]byte{0x51, 0, 0, 0, 81, 0, 32, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseControl(b)
		if !IsControl(b) {
			if !errors.Is(err, ErrNotControl) {
				t.Fatalf("non-control parsed: %v", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedControl) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var re []byte
		switch c.Type {
		case TypeHello:
			re = AppendHello(nil, c.Token)
		case TypeWelcome:
			re = AppendWelcome(nil, c.SessionID)
		case TypeReject:
			re = AppendReject(nil, c.Reason)
		case TypePing:
			re = AppendPing(nil, c.Ping)
		case TypePong:
			re = AppendPong(nil, c.Ping, c.RelayTime)
		case TypeChallenge:
			re = AppendChallenge(nil, c.Cookie)
		case TypeHelloCookie:
			re = AppendHelloCookie(nil, c.Token, c.Cookie)
		default:
			t.Fatalf("parsed unknown type %v", c.Type)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoded % x, want % x", re, b)
		}
	})
}
