package packet_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/packet"
)

// update rewrites the hex of testdata/vectors.json from the decoded JSON:
// go test ./proto/packet -run Vectors -update. Review the diff by hand
// against docs/protocol.md before committing it.
var update = flag.Bool("update", false, "rewrite testdata/vectors.json hex from the decoded fields")

const vectorsFile = "testdata/vectors.json"

// vectorFile is the layout of testdata/vectors.json (docs/protocol.md,
// "Test vectors").
type vectorFile struct {
	Comment string          `json:"comment"`
	Vectors []controlVector `json:"vectors"`
	Invalid []invalidVector `json:"invalid"`
}

type controlVector struct {
	Name    string         `json:"name"`
	Hex     string         `json:"hex"`
	Control decodedControl `json:"control"`
}

// decodedControl is a control packet as JSON. Only the fields of its type
// are present; seq is absent for a PING/PONG without a sequence number.
type decodedControl struct {
	Type       string  `json:"type"`
	TypeCode   int     `json:"type_code"`
	TokenHex   string  `json:"token_hex,omitempty"`   // HELLO, HELLO_COOKIE
	CookieHex  string  `json:"cookie_hex,omitempty"`  // CHALLENGE, HELLO_COOKIE
	SessionID  string  `json:"session_id,omitempty"`  // WELCOME
	Reason     int     `json:"reason,omitempty"`      // REJECT
	ReasonName string  `json:"reason_name,omitempty"` // REJECT
	ClientTime *uint64 `json:"client_time,omitempty"` // PING, PONG
	Seq        *uint64 `json:"seq,omitempty"`         // PING, PONG
	RelayTime  *uint64 `json:"relay_time,omitempty"`  // PONG
}

type invalidVector struct {
	Name string `json:"name"`
	Hex  string `json:"hex"`
	// Error is not_control (game traffic: forward or hand to KCP) or
	// malformed (starts with the magic but is wrong: drop).
	Error string `json:"error"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	if len(f.Vectors) == 0 || len(f.Invalid) == 0 {
		t.Fatalf("%s: no vectors", vectorsFile)
	}
	return f
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func u64(v uint64) *uint64 { return &v }

func decode(c packet.Control) decodedControl {
	d := decodedControl{Type: c.Type.String(), TypeCode: int(c.Type)}
	switch c.Type {
	case packet.TypeHello:
		d.TokenHex = hex.EncodeToString(c.Token)
	case packet.TypeChallenge:
		d.CookieHex = hex.EncodeToString(c.Cookie[:])
	case packet.TypeHelloCookie:
		d.TokenHex = hex.EncodeToString(c.Token)
		d.CookieHex = hex.EncodeToString(c.Cookie[:])
	case packet.TypeWelcome:
		d.SessionID = c.SessionID.String()
	case packet.TypeReject:
		d.Reason, d.ReasonName = int(c.Reason), c.Reason.String()
	case packet.TypePing, packet.TypePong:
		d.ClientTime = u64(c.Ping.ClientTime)
		if c.Ping.HasSeq {
			d.Seq = u64(c.Ping.Seq)
		}
		if c.Type == packet.TypePong {
			d.RelayTime = u64(c.RelayTime)
		}
	}
	return d
}

func encode(t *testing.T, d decodedControl) []byte {
	t.Helper()
	ping := func() packet.Ping {
		if d.ClientTime == nil {
			t.Fatal("client_time missing")
		}
		p := packet.Ping{ClientTime: *d.ClientTime}
		if d.Seq != nil {
			p.Seq, p.HasSeq = *d.Seq, true
		}
		return p
	}
	cookie := func() packet.Cookie {
		var c packet.Cookie
		if b := unhex(t, d.CookieHex); len(b) != packet.CookieLen {
			t.Fatalf("cookie_hex has %d bytes", len(b))
		} else {
			copy(c[:], b)
		}
		return c
	}
	switch packet.PacketType(d.TypeCode) {
	case packet.TypeHello:
		return packet.AppendHello(nil, unhex(t, d.TokenHex))
	case packet.TypeChallenge:
		return packet.AppendChallenge(nil, cookie())
	case packet.TypeHelloCookie:
		return packet.AppendHelloCookie(nil, unhex(t, d.TokenHex), cookie())
	case packet.TypeWelcome:
		return packet.AppendWelcome(nil, uuid.MustParse(d.SessionID))
	case packet.TypeReject:
		return packet.AppendReject(nil, packet.RejectReason(d.Reason))
	case packet.TypePing:
		return packet.AppendPing(nil, ping())
	case packet.TypePong:
		if d.RelayTime == nil {
			t.Fatal("relay_time missing")
		}
		return packet.AppendPong(nil, ping(), *d.RelayTime)
	}
	t.Fatalf("unknown type code %d", d.TypeCode)
	return nil
}

// TestVectors replays every vector both ways: the hex parses to the JSON,
// and the JSON encodes to the hex. Invalid vectors are refused as stated.
func TestVectors(t *testing.T) {
	f := loadVectors(t)
	for i := range f.Vectors {
		v := &f.Vectors[i]
		t.Run(v.Name, func(t *testing.T) {
			if *update {
				v.Hex = hex.EncodeToString(encode(t, v.Control))
			}
			b := unhex(t, v.Hex)
			c, err := packet.ParseControl(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := decode(c); !reflect.DeepEqual(got, v.Control) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(v.Control)
				t.Fatalf("decoded\n%s\nwant\n%s", gj, wj)
			}
			if got := encode(t, v.Control); !bytes.Equal(got, b) {
				t.Fatalf("encoded\n%x\nwant\n%s", got, v.Hex)
			}
		})
	}
	for _, v := range f.Invalid {
		t.Run("invalid/"+v.Name, func(t *testing.T) {
			want := map[string]error{"not_control": packet.ErrNotControl, "malformed": packet.ErrMalformedControl}[v.Error]
			if want == nil {
				t.Fatalf("unknown error %q", v.Error)
			}
			b := unhex(t, v.Hex)
			if _, err := packet.ParseControl(b); !errors.Is(err, want) {
				t.Fatalf("parse: %v, want %v", err, want)
			}
			if got := packet.IsControl(b); got != (v.Error == "malformed") {
				t.Fatalf("IsControl = %v", got)
			}
		})
	}
	if *update {
		b, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote", vectorsFile)
	}
}
