package arena

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/proto/wire"
)

// benchMatch builds a started match of n connected players whose
// connections are plain channels (no sockets), so step measures the tick
// itself: draining inputs, validation, movement, shots, snapshot encoding
// and the per-player copies queued to the writers.
func benchMatch(b *testing.B, n int) (*match, []*conn) {
	cfg := Config{OutQueue: 4, InputQueue: 4}
	if err := cfg.setDefaults(); err != nil {
		b.Fatal(err)
	}
	srv := &Server{cfg: cfg}
	ids := make([]uuid.UUID, n)
	teams := make([]int, n)
	for i := range ids {
		ids[i], teams[i] = uuid.New(), i
	}
	m := &match{srv: srv, cfg: &srv.cfg, sim: newSim(&srv.cfg, ids, teams)}
	conns := make([]*conn, n)
	for i, p := range m.sim.players {
		c := &conn{srv: srv, slot: i, inputs: make(chan wire.Input, 4), out: make(chan []byte, 4)}
		p.conn, p.joined, conns[i] = c, true, c
	}
	m.sim.started = true
	return m, conns
}

// feed queues one plausible input per player (random move within MaxStep,
// staggered shots) and empties the writers' queues.
func feed(m *match, conns []*conn, rng *rand.Rand, seq uint32) {
	step := int(m.cfg.MaxStep) / 2
	for i, c := range conns {
		c.inputs <- wire.Input{
			Seq:  seq,
			DX:   int16(rng.IntN(2*step+1) - step),
			DY:   int16(rng.IntN(2*step+1) - step),
			Fire: (int(seq)+i)%int(m.cfg.FireCooldown) == 0,
			Aim:  uint16(rng.Uint32()),
		}
		for len(c.out) > 0 {
			<-c.out
		}
	}
}

// BenchmarkTick reports the time of one tick alone (ns/tick: draining the
// queued inputs, validation, movement, shots, snapshot encoding and the
// per-player copies; the inputs are queued and the writers' queues emptied
// outside the timed part) with 8 and 64 players, and its ratio
// ("x-encode") to the baseline run just before it: encoding the same
// snapshot once, the part no tick can avoid.
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{8, 64} {
		var baseNs float64
		b.Run(fmt.Sprintf("players=%d/encode", n), func(b *testing.B) {
			m, _ := benchMatch(b, n)
			var buf []byte
			for b.Loop() {
				buf = m.sim.appendSnapshot(buf[:0])
			}
			baseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		b.Run(fmt.Sprintf("players=%d/tick", n), func(b *testing.B) {
			m, conns := benchMatch(b, n)
			rng := rand.New(rand.NewPCG(1, 2))
			seq := uint32(0)
			var ticking time.Duration
			b.ReportAllocs()
			for b.Loop() {
				seq++
				feed(m, conns, rng, seq)
				start := time.Now()
				reason := m.step()
				ticking += time.Since(start)
				if reason != 0 {
					// The score limit came up: start over on a fresh match.
					m, conns = benchMatch(b, n)
				}
			}
			perTick := float64(ticking.Nanoseconds()) / float64(b.N)
			b.ReportMetric(perTick, "ns/tick")
			if baseNs <= 0 {
				b.Fatal("no encode baseline: run the whole benchmark, not -bench …/tick alone")
			}
			b.ReportMetric(perTick/baseNs, "x-encode")
		})
	}
}

// BenchmarkDecodeInput is the server's per-input decode cost (length and
// flag checks included) beside its baseline in the same run: reading the
// same fields with no check at all ("x-raw").
func BenchmarkDecodeInput(b *testing.B) {
	f := wire.AppendFrame(nil, wire.Input{Seq: 7, DX: 3, DY: -4, Fire: true, Aim: 99})
	body := f[3:]
	var sink wire.Input
	var rawNs float64
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			sink = wire.Input{
				Seq:  binary.BigEndian.Uint32(body),
				DX:   int16(binary.BigEndian.Uint16(body[4:])),
				DY:   int16(binary.BigEndian.Uint16(body[6:])),
				Fire: body[8] == 1,
				Aim:  binary.BigEndian.Uint16(body[9:]),
			}
		}
		rawNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			in, err := wire.DecodeInput(body)
			if err != nil {
				b.Fatal(err)
			}
			sink = in
		}
		if rawNs <= 0 {
			b.Fatal("no raw baseline: run the whole benchmark")
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rawNs, "x-raw")
	})
	if sink.Seq != 7 {
		b.Fatalf("decoded %+v", sink)
	}
}
