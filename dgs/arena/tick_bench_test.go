package arena

import (
	"fmt"
	"math/rand/v2"
	"testing"

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

// BenchmarkTick reports the time of one tick with 8 and 64 players, and its
// ratio ("x-encode") to the baseline run just before it: encoding the same
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
			b.ReportAllocs()
			for b.Loop() {
				seq++
				feed(m, conns, rng, seq)
				if reason := m.step(); reason != 0 {
					// The score limit came up: start over on a fresh match.
					m, conns = benchMatch(b, n)
				}
			}
			if baseNs > 0 {
				perTick := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(perTick/baseNs, "x-encode")
			}
		})
	}
}

// BenchmarkDecodeInput is the server's per-input decode cost.
func BenchmarkDecodeInput(b *testing.B) {
	f := wire.AppendFrame(nil, wire.Input{Seq: 7, DX: 3, DY: -4, Fire: true, Aim: 99})
	for b.Loop() {
		if _, err := wire.DecodeInput(f[3:]); err != nil {
			b.Fatal(err)
		}
	}
}
