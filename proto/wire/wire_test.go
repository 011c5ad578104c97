package wire

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

func sampleMessages() []Message {
	tok := bytes.Repeat([]byte{7}, connecttoken.Size)
	return []Message{
		Join{Token: tok},
		Accept{Slot: 1, TickRate: 30, ArenaW: 100 * Q8, ArenaH: 60 * Q8, MaxStep: 64, FireCooldown: 10,
			Players: []uuid.UUID{uuid.MustParse("11111111-2222-3333-4444-555555555555"), uuid.MustParse("66666666-7777-8888-9999-aaaaaaaaaaaa")}},
		Input{Seq: 42, DX: -64, DY: 32, Fire: true, Aim: 0x4000},
		Snapshot{Tick: 9, AckSeq: 41, Players: []PlayerState{
			{Slot: 0, X: 10 * Q8, Y: 20 * Q8, Health: 100, Score: 3, Flags: FlagConnected | FlagAlive},
			{Slot: 1, X: -1, Y: 1 << 30, Health: 0, Score: -2, Flags: 0},
		}},
		Snapshot{Tick: 1, Players: []PlayerState{}},
		End{Reason: EndScoreLimit, WinnerSlot: 1, Scores: []SlotScore{{0, 3}, {1, 5}}},
		End{Reason: EndTimeLimit, WinnerSlot: NoWinner, Scores: []SlotScore{}},
		Refuse{Reason: RefuseExpired},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var stream []byte
	msgs := sampleMessages()
	for _, m := range msgs {
		stream = AppendFrame(stream, m)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	buf := make([]byte, MaxFrame)
	for i, want := range msgs {
		f, err := ReadFrame(r, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		got, err := Decode(f)
		if err != nil {
			t.Fatalf("decode %d (%s): %v", i, want.Type(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d:\n got %#v\nwant %#v", i, got, want)
		}
	}
	if _, err := ReadFrame(r, buf); err == nil {
		t.Fatal("read past the end succeeded")
	}
}

func TestSnapshotAckSeqOffset(t *testing.T) {
	f := AppendFrame(nil, Snapshot{Tick: 1, AckSeq: 0xA1B2C3D4})
	if got := f[SnapshotAckSeqOffset : SnapshotAckSeqOffset+4]; !bytes.Equal(got, []byte{0xA1, 0xB2, 0xC3, 0xD4}) {
		t.Fatalf("ack seq at offset %d is % x", SnapshotAckSeqOffset, got)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string][]byte{
		"empty":            {},
		"unknown type":     {99},
		"short join":       {byte(TypeJoin), 1, 2},
		"input bad bool":   {byte(TypeInput), 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0},
		"input short":      {byte(TypeInput), 0, 0, 0, 1},
		"snapshot count":   {byte(TypeSnapshot), 0, 0, 0, 1, 0, 0, 0, 1, 2},
		"end count":        {byte(TypeEnd), 1, 0, 1},
		"refuse long":      {byte(TypeRefuse), 1, 2},
		"accept truncated": {byte(TypeAccept), 0, 0, 30},
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestReadFrameLimits(t *testing.T) {
	buf := make([]byte, MaxFrame)
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0, 0})), buf); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty frame: %v", err)
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0xFF, 0xFF})), buf); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("huge frame: %v", err)
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0, 5, 1})), buf); err == nil {
		t.Error("truncated frame accepted")
	}
}

// FuzzDecode checks the decoder never panics and that whatever it accepts
// re-encodes to the same bytes (the format is canonical). The seed corpus is
// in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(AppendFrame(nil, m)[2:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		re := append([]byte{byte(m.Type())}, m.AppendBody(nil)...)
		if !bytes.Equal(re, b) {
			t.Fatalf("not canonical:\n in % x\nout % x", b, re)
		}
		if in, ok := m.(Input); ok {
			if in2, err := DecodeInput(b[1:]); err != nil || in2 != in {
				t.Fatalf("DecodeInput disagrees: %v %v", in2, err)
			}
		}
	})
}

// FuzzReadFrame feeds arbitrary streams to the framer and decoder together.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for _, m := range sampleMessages() {
		stream = AppendFrame(stream, m)
	}
	f.Add(stream)
	f.Add([]byte{0xFF, 0xFF, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		buf := make([]byte, MaxFrame)
		for {
			fr, err := ReadFrame(r, buf)
			if err != nil {
				return
			}
			if len(fr) == 0 || len(fr) > MaxFrame {
				t.Fatalf("frame of %d bytes", len(fr))
			}
			_, _ = Decode(fr)
		}
	})
}
