package wan

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// upstream is a UDP server on loopback that records the sequence numbers
// it receives (first 8 bytes) and the source of each, and echoes.
type upstream struct {
	conn net.PacketConn
	mu   sync.Mutex
	seqs []uint64
	srcs map[string]int
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{conn: c, srcs: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			if n >= 8 {
				u.seqs = append(u.seqs, binary.BigEndian.Uint64(buf))
			}
			u.srcs[from.String()]++
			u.mu.Unlock()
			_, _ = c.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	return u
}

func (u *upstream) received() []uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]uint64(nil), u.seqs...)
}

func startLink(t *testing.T, cfg Config) *Link {
	t.Helper()
	l, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = l.Close()
		_ = l.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return l
}

func dial(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func seqPacket(i uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, i)
	return b
}

// TestLinkDelaysEachDirection: every echo takes at least the up plus the
// down delay, and each client reaches the upstream from its own address.
func TestLinkDelaysEachDirection(t *testing.T) {
	testenv.CheckGoroutines(t)
	up := newUpstream(t)
	const upD, downD = 30 * time.Millisecond, 20 * time.Millisecond
	l := startLink(t, Config{Upstream: up.conn.LocalAddr().String(), Up: Path{Delay: upD}, Down: Path{Delay: downD, Jitter: 5 * time.Millisecond}})
	if l.Addr() == up.conn.LocalAddr().String() {
		t.Fatal("link listens on the upstream's address")
	}
	for c := 0; c < 2; c++ {
		conn := dial(t, l.Addr())
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		for i := uint64(0); i < 5; i++ {
			start := time.Now()
			if _, err := conn.Write(seqPacket(i)); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Read(buf); err != nil {
				t.Fatal(err)
			}
			if rtt := time.Since(start); rtt < upD+downD {
				t.Fatalf("client %d ping %d: rtt %v below the emulated %v", c, i, rtt, upD+downD)
			}
		}
	}
	up.mu.Lock()
	srcs := len(up.srcs)
	up.mu.Unlock()
	if srcs != 2 {
		t.Fatalf("upstream saw %d sources, want one per client (2)", srcs)
	}
	if s := l.Stats(); s.UpSent != 10 || s.DownSent != 10 || s.UpDropped+s.DownDropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestLinkLossFraction: with 30% loss on the up path, the fraction that
// arrives is within 6 standard deviations of 70% over 2000 datagrams.
func TestLinkLossFraction(t *testing.T) {
	testenv.CheckGoroutines(t)
	up := newUpstream(t)
	const n, loss = 2000, 0.3
	l := startLink(t, Config{Upstream: up.conn.LocalAddr().String(), Up: Path{Loss: loss}, Down: Path{Blackhole: true}})
	conn := dial(t, l.Addr())
	for i := uint64(0); i < n; i++ {
		if _, err := conn.Write(seqPacket(i)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 { // let the loopback buffers drain: count only emulated loss
			testenv.Eventually(t, 10*time.Second, func() error {
				if s := l.Stats(); s.UpSent+s.UpDropped < i+1 {
					return fmt.Errorf("link read %d of %d", s.UpSent+s.UpDropped, i+1)
				}
				if got, s := len(up.received()), l.Stats(); uint64(got) < s.UpSent {
					return fmt.Errorf("upstream got %d of %d forwarded", got, s.UpSent)
				}
				return nil
			})
		}
	}
	got := float64(len(up.received()))
	want := n * (1 - loss)
	sd := math.Sqrt(n * loss * (1 - loss))
	if math.Abs(got-want) > 6*sd {
		t.Fatalf("%v of %d arrived, want %v ± %v", got, n, want, 6*sd)
	}
	if s := l.Stats(); s.UpSent+s.UpDropped != n || float64(s.UpSent) != got || s.DownSent != 0 || s.DownDropped != uint64(got) {
		t.Fatalf("stats %+v, upstream got %v", s, got)
	}
}

// TestLinkBlackholeAndHeal: nothing sent while blackholed arrives; after
// the heal the next datagram does.
func TestLinkBlackholeAndHeal(t *testing.T) {
	testenv.CheckGoroutines(t)
	up := newUpstream(t)
	l := startLink(t, Config{Upstream: up.conn.LocalAddr().String()})
	conn := dial(t, l.Addr())
	if err := l.SetPaths(Path{Blackhole: true}, Path{}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 50; i++ {
		_, _ = conn.Write(seqPacket(i))
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if s := l.Stats(); s.UpDropped != 50 {
			return fmt.Errorf("dropped %d of 50", s.UpDropped)
		}
		return nil
	})
	if err := l.SetPaths(Path{}, Path{}); err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write(seqPacket(1000))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(buf[:n]); got != 1000 {
		t.Fatalf("first echo after the heal is %d, want 1000", got)
	}
	if r := up.received(); len(r) != 1 {
		t.Fatalf("upstream received %v, want only the datagram sent after the heal", r)
	}
	if err := l.SetPaths(Path{Loss: 2}, Path{}); err == nil {
		t.Fatal("loss 2 accepted")
	}
}

// TestLinkReorder: jitter alone keeps order; Reorder makes later datagrams
// overtake earlier ones.
func TestLinkReorder(t *testing.T) {
	testenv.CheckGoroutines(t)
	inversions := func(p Path) int {
		up := newUpstream(t)
		l := startLink(t, Config{Upstream: up.conn.LocalAddr().String(), Up: p, Seed: 7})
		conn := dial(t, l.Addr())
		const n = 300
		for i := uint64(0); i < n; i++ {
			_, _ = conn.Write(seqPacket(i))
			time.Sleep(200 * time.Microsecond) // pace: stay within loopback buffers
		}
		testenv.Eventually(t, 10*time.Second, func() error {
			if got, s := len(up.received()), l.Stats(); s.UpSent+s.UpDropped != n || uint64(got) != s.UpSent {
				return fmt.Errorf("upstream got %d, stats %+v", got, s)
			}
			return nil
		})
		inv := 0
		r := up.received()
		for i := 1; i < len(r); i++ {
			if r[i] < r[i-1] {
				inv++
			}
		}
		return inv
	}
	if inv := inversions(Path{Delay: 2 * time.Millisecond, Jitter: 10 * time.Millisecond}); inv != 0 {
		t.Fatalf("jitter alone reordered %d datagrams", inv)
	}
	if inv := inversions(Path{Delay: 2 * time.Millisecond, Reorder: 0.2, ReorderDelay: 5 * time.Millisecond}); inv == 0 {
		t.Fatal("reorder 0.2 kept every datagram in order")
	}
}

func TestLinkConfigErrors(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Fatal("missing upstream accepted")
	}
	if _, err := New(Config{Upstream: "127.0.0.1:1", Down: Path{Delay: -1}}, Deps{}); err == nil {
		t.Fatal("negative delay accepted")
	}
}
