package wan

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

func tcpEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

func roundTrip(addr string) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// TestProxyLatencyCutHeal: the delay applies in both directions, a cut
// closes live connections and refuses new ones, a heal serves again on the
// same address.
func TestProxyLatencyCutHeal(t *testing.T) {
	echo := tcpEcho(t)
	const d = 25 * time.Millisecond
	p, err := NewProxy(ProxyConfig{Name: "test", Upstream: echo, Delay: d})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := p.Addr()
	rtt, err := roundTrip(addr)
	if err != nil {
		t.Fatal(err)
	}
	if rtt < 2*d {
		t.Fatalf("round trip %v below twice the one-way delay %v", rtt, d)
	}

	live, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := live.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	_ = live.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(live).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if !p.IsCut() {
		t.Fatal("not cut")
	}
	if _, err := bufio.NewReader(live).ReadString('\n'); err == nil {
		t.Fatal("a live connection survived the cut")
	}
	if _, err := roundTrip(addr); err == nil {
		t.Fatal("a new connection got through a cut proxy")
	}
	if err := p.Heal(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Fatalf("healed on %s, want %s", p.Addr(), addr)
	}
	if err := p.SetLatency(0, 0); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error { _, err := roundTrip(addr); return err })
	_ = p.Close()
	_ = p.Close()
}
