package dgs

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/dgs/internal/dgstest"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// cutProxy forwards TCP to upstream until Cut, which closes every
// connection and refuses new ones until Restore: a NATS outage as the
// DGS sees it.
type cutProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	down     bool
	conns    []net.Conn
	wg       sync.WaitGroup
}

func newCutProxy(t *testing.T, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut(); p.wg.Wait() })
	return p
}

func (p *cutProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(u, c); u.Close() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, u); c.Close() }()
	}
}

func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestResultSurvivesALongNATSOutage: the match ends while the server's
// NATS is unreachable for longer than the old give-up (shortened here:
// 1 s attempts against a 6 s outage). The result is published once NATS
// is back, and only then does the server take another match.
func TestResultSurvivesALongNATSOutage(t *testing.T) {
	testenv.CheckGoroutines(t)
	nc, creds := dgstest.NATSAndCreds(t, cell, "dgs-out")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	if err := events.EnsureMatchStream(ctx, js, cell, time.Hour); err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, nc.ConnectedAddr())
	states := make(chan events.DGSHealth, 4096)
	sub, _ := nc.Subscribe(events.DGSHealthSubject(cell, "dgs-out"), func(m *nats.Msg) {
		var h events.DGSHealth
		if json.Unmarshal(m.Data, &h) == nil {
			select {
			case states <- h:
			default:
			}
		}
	})
	defer sub.Unsubscribe()
	_ = nc.Flush()

	runCtx, stopRun := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- RunServer(runCtx, ServerConfig{
			Cell: cell, ID: "dgs-out", NATSURL: proxy.URL(), NATSCreds: creds, HealthInterval: 50 * time.Millisecond,
			WaitForPlayers: 1500 * time.Millisecond, // nobody joins: the match ends abandoned
			ResultTimeout:  time.Second, ResultRetryMax: 500 * time.Millisecond,
		})
	}()
	defer func() {
		stopRun()
		select {
		case <-runErr:
		case <-time.After(20 * time.Second):
			t.Error("RunServer did not return")
		}
	}()
	waitState := func(state events.DGSState) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case h := <-states:
				if h.State == state {
					return
				}
			case <-deadline:
				t.Fatalf("no %s heartbeat", state)
			}
		}
	}
	waitState(events.DGSReady)
	session := uuid.NewString()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	b, _ := json.Marshal(events.Allocation{SessionID: session, GameMode: "arena", Players: []string{uuid.NewString()},
		ConnectKeys: []string{base64.StdEncoding.EncodeToString(pub)}})
	// (Ready may be announced a moment before the SDK subscribed.)
	testenv.Eventually(t, 10*time.Second, func() error {
		m, err := nc.Request(events.DGSAllocateSubject(cell, "dgs-out"), b, time.Second)
		if err != nil {
			return err
		}
		var r events.AllocationReply
		if err := json.Unmarshal(m.Data, &r); err != nil || !r.OK {
			t.Fatalf("allocation refused: %s (%v)", m.Data, err)
		}
		return nil
	})
	waitState(events.DGSAllocated)

	// The outage starts before the match ends and outlasts several
	// publish attempts.
	proxy.Cut()
	outage := time.Now()
	time.Sleep(6 * time.Second) // the outage itself, not a wait for a result
	st, err := js.Stream(ctx, events.MatchStream(cell))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("during the outage the stream holds %v (%v)", info.State.Msgs, err)
	}
	// Drain heartbeats from before the outage, then restore.
	for len(states) > 0 {
		<-states
	}
	proxy.Restore()
	testenv.Eventually(t, 30*time.Second, func() error {
		m, err := st.GetLastMsgForSubject(ctx, events.MatchResultSubject(cell, "dgs-out"))
		if err != nil {
			return err
		}
		var r events.MatchResult
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return err
		}
		if r.SessionID != session {
			return errors.New("result of another session")
		}
		return nil
	})
	t.Logf("result published %v after the outage began", time.Since(outage).Round(time.Millisecond))
	waitState(events.DGSReady) // and only then Ready again
}
