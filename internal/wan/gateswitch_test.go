package wan

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// fakeGateway sends an INFO line to each connection and echoes the rest.
func fakeGateway(t *testing.T) string {
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
				_, _ = c.Write([]byte("INFO {}\r\n"))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					_, _ = c.Write(line)
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

// gatewayConn dials through the switch as cluster from and checks the
// path with one echo.
func gatewayConn(addr, from string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // INFO
		c.Close()
		return nil, nil, err
	}
	if _, err := fmt.Fprintf(c, "CONNECT {\"gateway\":%q}\r\nPING\r\n", from); err != nil {
		c.Close()
		return nil, nil, err
	}
	for _, want := range []string{"CONNECT", "PING"} {
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		if len(line) < len(want) || line[:len(want)] != want {
			c.Close()
			return nil, nil, fmt.Errorf("echo %q, want %s", line, want)
		}
	}
	return c, r, nil
}

// TestGatewaySwitchIsolates: isolating a cluster closes its connections
// and refuses new ones, others carry on; isolating the switch's own
// cluster cuts everyone; Rejoin restores.
func TestGatewaySwitchIsolates(t *testing.T) {
	testenv.CheckGoroutines(t)
	sw, err := NewGatewaySwitch("global", fakeGateway(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	eu, euR, err := gatewayConn(sw.Addr(), "eu")
	if err != nil {
		t.Fatal(err)
	}
	defer eu.Close()
	us, _, err := gatewayConn(sw.Addr(), "us")
	if err != nil {
		t.Fatal(err)
	}
	defer us.Close()

	sw.Isolate("eu")
	if _, err := euR.ReadString('\n'); err == nil {
		t.Fatal("eu's connection survived its isolation")
	}
	if _, _, err := gatewayConn(sw.Addr(), "eu"); err == nil {
		t.Fatal("isolated eu connected again")
	}
	if c, _, err := gatewayConn(sw.Addr(), "us"); err != nil {
		t.Fatalf("us cut by eu's isolation: %v", err)
	} else {
		c.Close()
	}
	sw.Rejoin("eu")
	testenv.Eventually(t, 10*time.Second, func() error {
		c, _, err := gatewayConn(sw.Addr(), "eu")
		if err == nil {
			c.Close()
		}
		return err
	})
	sw.Isolate("global")
	if _, _, err := gatewayConn(sw.Addr(), "us"); err == nil {
		t.Fatal("a cluster reached an isolated one")
	}
	_ = sw.Close()
	_ = sw.Close()
}
