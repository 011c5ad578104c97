package wire_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/wire"
)

// update rewrites the hex of testdata/vectors.json from the decoded JSON:
// go test ./proto/wire -run Vectors -update. Review the diff by hand
// against docs/protocol.md before committing it.
var update = flag.Bool("update", false, "rewrite testdata/vectors.json hex from the decoded fields")

const vectorsFile = "testdata/vectors.json"

// vectorFile is the layout of testdata/vectors.json (docs/protocol.md,
// "Test vectors").
type vectorFile struct {
	Comment string          `json:"comment"`
	Vectors []frameVector   `json:"vectors"`
	Invalid []invalidVector `json:"invalid"`
}

type frameVector struct {
	Name    string          `json:"name"`
	Hex     string          `json:"hex"` // the whole frame: length prefix, type, body
	Message json.RawMessage `json:"message"`
}

type invalidVector struct {
	Name string `json:"name"`
	Hex  string `json:"hex"`
	// Error is malformed or frame_too_large.
	Error string `json:"error"`
}

// JSON forms of the messages; every field is always present.
type (
	head struct {
		Type     string `json:"type"`
		TypeCode int    `json:"type_code"`
	}
	jJoin struct {
		head
		TokenHex string `json:"token_hex"`
	}
	jAccept struct {
		head
		Slot         uint8    `json:"slot"`
		TickRate     uint16   `json:"tick_rate"`
		ArenaW       int32    `json:"arena_w"`
		ArenaH       int32    `json:"arena_h"`
		MaxStep      uint16   `json:"max_step"`
		FireCooldown uint16   `json:"fire_cooldown"`
		Players      []string `json:"players"`
	}
	jInput struct {
		head
		Seq  uint32 `json:"seq"`
		DX   int16  `json:"dx"`
		DY   int16  `json:"dy"`
		Fire bool   `json:"fire"`
		Aim  uint16 `json:"aim"`
	}
	jPlayerState struct {
		Slot   uint8  `json:"slot"`
		X      int32  `json:"x"`
		Y      int32  `json:"y"`
		Health uint16 `json:"health"`
		Score  int32  `json:"score"`
		Flags  uint8  `json:"flags"`
	}
	jSnapshot struct {
		head
		Tick    uint32         `json:"tick"`
		AckSeq  uint32         `json:"ack_seq"`
		Players []jPlayerState `json:"players"`
	}
	jSlotScore struct {
		Slot  uint8 `json:"slot"`
		Score int32 `json:"score"`
	}
	jEnd struct {
		head
		Reason     uint8        `json:"reason"`
		ReasonName string       `json:"reason_name"`
		WinnerSlot uint8        `json:"winner_slot"`
		Scores     []jSlotScore `json:"scores"`
	}
	jRefuse struct {
		head
		Reason     uint8  `json:"reason"`
		ReasonName string `json:"reason_name"`
	}
)

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

// toJSON is the JSON form of m.
func toJSON(m wire.Message) any {
	h := head{Type: m.Type().String(), TypeCode: int(m.Type())}
	switch m := m.(type) {
	case wire.Join:
		return jJoin{h, hex.EncodeToString(m.Token)}
	case wire.Accept:
		ids := make([]string, len(m.Players))
		for i, p := range m.Players {
			ids[i] = p.String()
		}
		return jAccept{h, m.Slot, m.TickRate, m.ArenaW, m.ArenaH, m.MaxStep, m.FireCooldown, ids}
	case wire.Input:
		return jInput{h, m.Seq, m.DX, m.DY, m.Fire, m.Aim}
	case wire.Snapshot:
		ps := make([]jPlayerState, len(m.Players))
		for i, p := range m.Players {
			ps[i] = jPlayerState{p.Slot, p.X, p.Y, p.Health, p.Score, p.Flags}
		}
		return jSnapshot{h, m.Tick, m.AckSeq, ps}
	case wire.End:
		ss := make([]jSlotScore, len(m.Scores))
		for i, s := range m.Scores {
			ss[i] = jSlotScore{s.Slot, s.Score}
		}
		return jEnd{h, uint8(m.Reason), m.Reason.String(), m.WinnerSlot, ss}
	case wire.Refuse:
		return jRefuse{h, uint8(m.Reason), m.Reason.String()}
	}
	panic(fmt.Sprintf("unknown message %T", m))
}

// fromJSON builds the message raw describes.
func fromJSON(t *testing.T, raw json.RawMessage) wire.Message {
	t.Helper()
	var h head
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	strict := func(v any) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v", h.Type, err)
		}
	}
	switch wire.Type(h.TypeCode) {
	case wire.TypeJoin:
		var j jJoin
		strict(&j)
		return wire.Join{Token: unhex(t, j.TokenHex)}
	case wire.TypeAccept:
		var j jAccept
		strict(&j)
		m := wire.Accept{Slot: j.Slot, TickRate: j.TickRate, ArenaW: j.ArenaW, ArenaH: j.ArenaH, MaxStep: j.MaxStep, FireCooldown: j.FireCooldown}
		for _, p := range j.Players {
			m.Players = append(m.Players, uuid.MustParse(p))
		}
		return m
	case wire.TypeInput:
		var j jInput
		strict(&j)
		return wire.Input{Seq: j.Seq, DX: j.DX, DY: j.DY, Fire: j.Fire, Aim: j.Aim}
	case wire.TypeSnapshot:
		var j jSnapshot
		strict(&j)
		m := wire.Snapshot{Tick: j.Tick, AckSeq: j.AckSeq}
		for _, p := range j.Players {
			m.Players = append(m.Players, wire.PlayerState{Slot: p.Slot, X: p.X, Y: p.Y, Health: p.Health, Score: p.Score, Flags: p.Flags})
		}
		return m
	case wire.TypeEnd:
		var j jEnd
		strict(&j)
		m := wire.End{Reason: wire.EndReason(j.Reason), WinnerSlot: j.WinnerSlot}
		for _, s := range j.Scores {
			m.Scores = append(m.Scores, wire.SlotScore{Slot: s.Slot, Score: s.Score})
		}
		return m
	case wire.TypeRefuse:
		var j jRefuse
		strict(&j)
		return wire.Refuse{Reason: wire.RefuseReason(j.Reason)}
	}
	t.Fatalf("unknown type code %d", h.TypeCode)
	return nil
}

// canonical decodes JSON into generic values so two encodings compare by
// content.
func canonical(t *testing.T, v any) any {
	t.Helper()
	b, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// readOne reads exactly one frame from b and decodes it.
func readOne(b []byte) (wire.Message, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	frame, err := wire.ReadFrame(r, make([]byte, wire.MaxFrame))
	if err != nil {
		return nil, err
	}
	m, err := wire.Decode(frame)
	if err != nil {
		return nil, err
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, errors.New("bytes after the frame")
	}
	return m, nil
}

// TestVectors replays every vector both ways: the hex reads and decodes to
// the JSON, and the JSON encodes to the hex. Invalid frames are refused as
// stated.
func TestVectors(t *testing.T) {
	f := loadVectors(t)
	for i := range f.Vectors {
		v := &f.Vectors[i]
		t.Run(v.Name, func(t *testing.T) {
			if *update {
				v.Hex = hex.EncodeToString(wire.AppendFrame(nil, fromJSON(t, v.Message)))
				b, err := json.Marshal(toJSON(fromJSON(t, v.Message)))
				if err != nil {
					t.Fatal(err)
				}
				v.Message = b
			}
			b := unhex(t, v.Hex)
			m, err := readOne(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got, want := canonical(t, toJSON(m)), canonical(t, v.Message); !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				t.Fatalf("decoded\n%s\nwant\n%s", gj, v.Message)
			}
			if got := wire.AppendFrame(nil, fromJSON(t, v.Message)); !bytes.Equal(got, b) {
				t.Fatalf("encoded\n%x\nwant\n%s", got, v.Hex)
			}
		})
	}
	for _, v := range f.Invalid {
		t.Run("invalid/"+v.Name, func(t *testing.T) {
			want := map[string]error{"malformed": wire.ErrMalformed, "frame_too_large": wire.ErrFrameTooLarge}[v.Error]
			if want == nil {
				t.Fatalf("unknown error %q", v.Error)
			}
			if m, err := readOne(unhex(t, v.Hex)); !errors.Is(err, want) {
				t.Fatalf("decode: %v (%+v), want %v", err, m, want)
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
