package relay

import (
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/proto/packet"
)

// Run all three in one go:
//
//	go test -run XXX -bench . -benchtime=1x ./relay/
//
// Loopback figures on a shared 2-core VM are noisy: read the ratios. Each
// benchmark op is one whole comparison, so ns/op is the time of one run of
// every variant, not a per-packet figure.

// maxLoss is the loss above which a throughput figure measures the
// kernel's drops rather than the forwarder: the benchmark fails.
const maxLoss = 0.01

const benchPackets = 200_000

var benchConfig = Config{
	PacketsPerSecond: 1e9, PacketBurst: 1 << 30,
	BytesPerSecond: 1e12, ByteBurst: 1 << 30,
}

// sink counts datagrams arriving on a socket.
type sink struct {
	conn  *net.UDPConn
	count atomic.Int64
	last  atomic.Int64 // UnixNano of the last datagram
}

func startSink(b *testing.B) *sink {
	s := &sink{conn: listen(b, networks[0])}
	s.conn.SetReadBuffer(4 << 20)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				return
			}
			if packet.IsControl(buf[:n]) { // the HELLO
				continue
			}
			s.count.Add(1)
			s.last.Store(time.Now().UnixNano())
		}
	}()
	return s
}

// blast sends n 64-byte datagrams from c to to as fast as it can and returns
// delivered packets per second at s and the fraction lost.
func blast(b *testing.B, c *net.UDPConn, to netip.AddrPort, s *sink, n int) (pps, loss float64) {
	base := s.count.Load()
	msg := make([]byte, 64)
	start := time.Now()
	s.last.Store(start.UnixNano())
	// At most window datagrams in flight, so socket buffers never overflow
	// and the figure is the forwarder's rate, not the kernel's drop rate.
	const window = 128
	for i := range n {
		for int64(i)-(s.count.Load()-base) >= window {
			if time.Since(time.Unix(0, s.last.Load())) > 300*time.Millisecond {
				break // lost some: do not wait forever
			}
			runtime.Gosched()
		}
		c.WriteToUDPAddrPort(msg, to)
	}
	// Wait until everything arrived or nothing arrived for a while.
	for {
		got := s.count.Load() - base
		if got >= int64(n) || time.Since(time.Unix(0, s.last.Load())) > 300*time.Millisecond {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := s.count.Load() - base
	end := time.Unix(0, s.last.Load())
	if got == 0 || !end.After(start) {
		b.Fatalf("blast: %d of %d datagrams arrived: no rate to report", got, n)
	}
	pps, loss = float64(got)/end.Sub(start).Seconds(), 1-float64(got)/float64(n)
	if loss > maxLoss {
		b.Fatalf("blast: lost %.2f%% of %d datagrams (limit %.0f%%): the figure would be the kernel's drop rate", 100*loss, n, 100*maxLoss)
	}
	return pps, loss
}

// plainForwarder is the baseline: one goroutine, read → write, no lookups.
func plainForwarder(b *testing.B, to netip.AddrPort) netip.AddrPort {
	in := listen(b, networks[0])
	in.SetReadBuffer(4 << 20)
	out := listen(b, networks[0])
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			out.WriteToUDPAddrPort(buf[:n], to)
		}
	}()
	return addrPort(in)
}

func relayTo(b *testing.B, cfg Config, dgs netip.AddrPort) (*testRelay, *net.UDPConn) {
	tr := startRelay(b, networks[0], cfg)
	tr.conn.(*net.UDPConn).SetReadBuffer(4 << 20)
	token, _, _ := tr.session(b, dgs)
	c := listen(b, networks[0])
	tr.bind(b, c, token)
	return tr, c
}

// BenchmarkForwarding compares client→DGS forwarding through the relay
// (batched and single reads) with a plain single-goroutine forwarder.
func BenchmarkForwarding(b *testing.B) {
	var plain, batched, single, lossMax float64
	for range b.N {
		s := startSink(b)
		c := listen(b, networks[0])
		fwd := plainForwarder(b, addrPort(s.conn))
		pps, loss := blast(b, c, fwd, s, benchPackets)
		plain, lossMax = pps, max(lossMax, loss)

		tr, rc := relayTo(b, benchConfig, addrPort(s.conn))
		pps, loss = blast(b, rc, tr.addr, s, benchPackets)
		batched, lossMax = pps, max(lossMax, loss)

		cfg := benchConfig
		cfg.ReadBatch = 1
		tr, rc = relayTo(b, cfg, addrPort(s.conn))
		pps, loss = blast(b, rc, tr.addr, s, benchPackets)
		single, lossMax = pps, max(lossMax, loss)
	}
	b.ReportMetric(plain, "plain_pps")
	b.ReportMetric(batched, "relay_batch_pps")
	b.ReportMetric(single, "relay_single_pps")
	b.ReportMetric(batched/plain, "batch/plain")
	b.ReportMetric(single/plain, "single/plain")
	b.ReportMetric(lossMax, "max_loss")
}

// BenchmarkRoundTrip compares client↔echo-DGS round trips through the relay
// with direct ones.
func BenchmarkRoundTrip(b *testing.B) {
	const samples = 20_000
	dgs := startDGS(b, networks[0])
	go func() { // startDGS records everything; keep its channel drained
		for range dgs.got {
		}
	}()
	measure := func(c *net.UDPConn, to netip.AddrPort) (p50, p99 float64) {
		msg, buf := make([]byte, 64), make([]byte, 2048)
		rtts := make([]time.Duration, 0, samples)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		for range samples {
			t0 := time.Now()
			c.WriteToUDPAddrPort(msg, to)
			if _, err := c.Read(buf); err != nil {
				b.Fatal(err)
			}
			rtts = append(rtts, time.Since(t0))
		}
		slices.Sort(rtts)
		us := func(q float64) float64 { return float64(rtts[int(q*float64(len(rtts)-1))].Nanoseconds()) / 1e3 }
		return us(0.50), us(0.99)
	}
	var d50, d99, r50, r99 float64
	for range b.N {
		d50, d99 = measure(listen(b, networks[0]), dgs.addr())
		tr := startRelay(b, networks[0], benchConfig)
		token, _, _ := tr.session(b, dgs.addr())
		c := listen(b, networks[0])
		tr.bind(b, c, token)
		r50, r99 = measure(c, tr.addr)
	}
	b.ReportMetric(d50, "direct_p50_µs")
	b.ReportMetric(d99, "direct_p99_µs")
	b.ReportMetric(r50, "relay_p50_µs")
	b.ReportMetric(r99, "relay_p99_µs")
	if d50 <= 0 || d99 <= 0 {
		b.Fatalf("direct round trips p50 %vµs p99 %vµs: no baseline to divide by", d50, d99)
	}
	b.ReportMetric(r50/d50, "p50_ratio")
	b.ReportMetric(r99/d99, "p99_ratio")
}

// heapGrowth runs f between two forced collections and returns the heap
// and stack growth (negative when the collector freed more than f kept).
func heapGrowth(f func()) (heap, stack int64) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	return int64(m1.HeapAlloc) - int64(m0.HeapAlloc), int64(m1.StackInuse) - int64(m0.StackInuse)
}

// BenchmarkMemoryPerBinding binds 1000 clients (the full handshake minus the
// socket read) and reports heap and stack growth per binding, beside its
// same-run baseline: the connected UDP socket every binding holds to its
// DGS, opened 1000 times on its own ("x-socket").
func BenchmarkMemoryPerBinding(b *testing.B) {
	const sessions = 1000
	dgs := startDGS(b, networks[0])
	var heapPer, stackPer, socketPer float64
	for range b.N {
		socks := make([]*net.UDPConn, 0, sessions)
		heap, _ := heapGrowth(func() {
			for range sessions {
				c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dgs.addr()))
				if err != nil {
					b.Fatal(err)
				}
				socks = append(socks, c)
			}
		})
		socketPer = float64(heap) / sessions
		for _, c := range socks {
			c.Close()
		}

		tr := startRelay(b, networks[0], Config{MaxBindings: sessions})
		tokens := make([][]byte, sessions)
		for i := range tokens {
			tokens[i], _, _ = tr.session(b, dgs.addr())
		}
		heap, stack := heapGrowth(func() {
			for i, tok := range tokens {
				from := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i))
				if res := tr.Relay.hello(from, tok, nil); res.b == nil {
					b.Fatalf("binding %d: %v", i, res.reason)
				}
			}
		})
		if tr.bound() != sessions {
			b.Fatalf("%d bound", tr.bound())
		}
		heapPer, stackPer = float64(heap)/sessions, float64(stack)/sessions
		tr.stop()
	}
	b.ReportMetric(heapPer, "heap_B/session")
	b.ReportMetric(stackPer, "stack_B/session")
	b.ReportMetric(socketPer, "socket_heap_B")
	if socketPer <= 0 {
		b.Fatalf("the socket baseline grew the heap by %.0f B: nothing to compare with", socketPer)
	}
	b.ReportMetric(heapPer/socketPer, "x-socket")
}
