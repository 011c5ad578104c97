package wan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// GatewaySwitch is a TCP forwarder in front of one NATS server's gateway
// port that knows which cluster dialed each connection (from the
// gateway's CONNECT line), so a cluster can be isolated in both
// directions: an asymmetric cut (only the connections into a cluster)
// makes nats-server retry its implicit gateways in a tight loop while the
// reverse connection lives. Put a Proxy in front of it for latency.
type GatewaySwitch struct {
	ln       net.Listener
	upstream string
	self     string // the cluster behind this switch

	mu       sync.Mutex
	isolated map[string]bool     // guarded by mu: clusters cut off
	conns    map[net.Conn]string // guarded by mu: client side → dialing cluster
	closed   bool                // guarded by mu
	wg       sync.WaitGroup
}

// NewGatewaySwitch listens on 127.0.0.1:0 and forwards to upstream, the
// gateway port of cluster self.
func NewGatewaySwitch(self, upstream string) (*GatewaySwitch, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gateway switch %s: %w", self, err)
	}
	g := &GatewaySwitch{ln: ln, upstream: upstream, self: self, isolated: map[string]bool{}, conns: map[net.Conn]string{}}
	g.wg.Add(1)
	go g.accept()
	return g, nil
}

// Addr is where to connect instead of the gateway port.
func (g *GatewaySwitch) Addr() string { return g.ln.Addr().String() }

// Isolate cuts cluster off: its connections through the switch close and
// new ones are refused. Isolating the switch's own cluster cuts everyone.
func (g *GatewaySwitch) Isolate(cluster string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.isolated[cluster] = true
	for c, from := range g.conns {
		if from == cluster || cluster == g.self {
			_ = c.Close()
		}
	}
}

// Rejoin undoes Isolate.
func (g *GatewaySwitch) Rejoin(cluster string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.isolated, cluster)
}

// Close stops the switch and its connections. Safe twice.
func (g *GatewaySwitch) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	_ = g.ln.Close()
	for c := range g.conns {
		_ = c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	return nil
}

func (g *GatewaySwitch) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.serve(c)
		}()
	}
}

// allowed registers c as dialed by from, unless from (or everyone) is cut.
func (g *GatewaySwitch) allowed(c net.Conn, from string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.isolated[from] || g.isolated[g.self] {
		return false
	}
	g.conns[c] = from
	return true
}

func (g *GatewaySwitch) serve(c net.Conn) {
	defer c.Close()
	g.mu.Lock()
	if g.closed || g.isolated[g.self] {
		g.mu.Unlock()
		return
	}
	g.conns[c] = "" // until the CONNECT names the dialer
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
	}()
	up, err := net.Dial("tcp", g.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, up) // INFO first, then the server's side
		_ = c.Close()
		close(done)
	}()
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err != nil {
		_ = up.Close()
		<-done
		return
	}
	from, _ := connectGateway(line)
	if !g.allowed(c, from) {
		_ = up.Close()
		<-done
		return
	}
	if _, err := up.Write(line); err == nil {
		_, _ = io.Copy(up, r)
	}
	_ = up.Close()
	<-done
}

// connectGateway returns the "gateway" field of a CONNECT line.
func connectGateway(line []byte) (string, error) {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("CONNECT "))
	if !ok {
		return "", errors.New("not a CONNECT")
	}
	var v struct {
		Gateway string `json:"gateway"`
	}
	if err := json.Unmarshal(rest, &v); err != nil {
		return "", err
	}
	return v.Gateway, nil
}
