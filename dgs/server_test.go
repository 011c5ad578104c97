package dgs

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/dgs/internal/dgstest"
	"github.com/cellgrid/cellgrid/dgs/sdk"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/wire"
)

const cell = "eu-dgs-1"

// heartbeats returns the latest heartbeat of each state seen, polled by the
// test with deadlines.
type heartbeats struct {
	mu   sync.Mutex
	last map[string]events.DGSHealth
	all  []events.DGSHealth
}

func (h *heartbeats) wait(t *testing.T, state events.DGSState, after int) (events.DGSHealth, int) {
	t.Helper()
	var got events.DGSHealth
	var idx int
	testenv.Eventually(t, 15*time.Second, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for i := after; i < len(h.all); i++ {
			if h.all[i].State == state {
				got, idx = h.all[i], i
				return nil
			}
		}
		return fmt.Errorf("no %s heartbeat after #%d (have %d)", state, after, len(h.all))
	})
	return got, idx
}

func TestRunServerMatchResultAndShutdown(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, cell)
	hb := &heartbeats{}
	sub, err := nc.Subscribe(events.DGSHealthSubject(cell), func(m *nats.Msg) {
		var h events.DGSHealth
		if json.Unmarshal(m.Data, &h) == nil && h.ID == "dgs-7" {
			hb.mu.Lock()
			hb.all = append(hb.all, h)
			hb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		runErr <- RunServer(ctx, ServerConfig{
			Cell: cell, ID: "dgs-7", Version: "v-test", NATSURL: nc.ConnectedUrl(),
			GameListen: "127.0.0.1:0", HealthInterval: 50 * time.Millisecond,
			ScoreLimit: 2, TimeLimit: 5 * time.Second,
		})
	}()

	ready, i := hb.wait(t, events.DGSReady, 0)
	if strings.HasSuffix(ready.GameAddr, ":0") || ready.Version != "v-test" {
		t.Fatalf("ready heartbeat %+v", ready)
	}
	gameAddr := netip.MustParseAddrPort(ready.GameAddr)

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	session := uuid.New()
	players := []uuid.UUID{uuid.New(), uuid.New()}
	alloc := events.Allocation{
		SessionID: session.String(), GameMode: "arena",
		Players:     []string{players[0].String(), players[1].String()},
		ConnectKeys: []string{base64.RawURLEncoding.EncodeToString(pub)},
	}
	b, _ := json.Marshal(alloc)
	msg, err := nc.Request(events.DGSAllocateSubject(cell, "dgs-7"), b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply events.AllocationReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil || !reply.OK {
		t.Fatalf("allocation reply %s", msg.Data)
	}
	allocated, i := hb.wait(t, events.DGSAllocated, i)
	if allocated.SessionID != session.String() {
		t.Fatalf("allocated heartbeat %+v", allocated)
	}

	// Two real KCP clients play to the score limit.
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	var wg sync.WaitGroup
	for _, p := range players {
		tok, err := connecttoken.Mint(priv, connecttoken.Token{
			SessionID: session, PlayerID: p, ExpiresAt: time.Now().Add(time.Minute), ServerAddr: gameAddr,
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := gameconn.Dial(dctx, gameconn.ClientConfig{Addr: net.UDPAddrFromAddrPort(gameAddr), Token: tok})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		wg.Add(1)
		go func() { defer wg.Done(); dgstest.Bot(c) }()
	}
	wg.Wait()

	// Back to Ready for the next allocation (fleet reuse).
	again, i := hb.wait(t, events.DGSReady, i)
	if again.SessionID != "" {
		t.Fatalf("ready heartbeat after match %+v", again)
	}

	// The result is on JetStream exactly once, even after another
	// ReportResult of the same session (say, a retry from a restarted DGS).
	jctx, jcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer jcancel()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(jctx, events.MatchStream(cell))
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(jctx, events.MatchResultSubject(cell))
	if err != nil {
		t.Fatal(err)
	}
	var res events.MatchResult
	if err := json.Unmarshal(m.Data, &res); err != nil {
		t.Fatal(err)
	}
	if res.SessionID != session.String() || res.Reason != "score_limit" || res.DGSID != "dgs-7" || res.Cell != cell || res.Winner == "" {
		t.Fatalf("stored result %+v", res)
	}
	other, err := sdk.New(sdk.Config{Cell: cell, ID: "dgs-other", NATS: nc})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ReportResult(jctx, res); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(jctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d results, want 1", info.State.Msgs)
	}

	// A shutdown request while Ready stops the server.
	if err := nc.Publish(events.DGSShutdownSubject(cell, "dgs-7"), nil); err != nil {
		t.Fatal(err)
	}
	hb.wait(t, events.DGSShutdown, i)
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("RunServer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunServer did not return after a shutdown request")
	}
}

// A shutdown request during a match with two players lets the match run
// to its limit: both players get END (time_limit), the result is
// published, and only then does the server stop — never back to Ready.
// (With nobody playing, a cut match and an abandoned one look alike.)
func TestRunServerShutdownRequestDuringMatch(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, cell)
	hb := &heartbeats{}
	sub, err := nc.Subscribe(events.DGSHealthSubject(cell), func(m *nats.Msg) {
		var h events.DGSHealth
		if json.Unmarshal(m.Data, &h) == nil && h.ID == "dgs-8" {
			hb.mu.Lock()
			hb.all = append(hb.all, h)
			hb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	runErr := make(chan error, 1)
	go func() {
		runErr <- RunServer(context.Background(), ServerConfig{
			Cell: cell, ID: "dgs-8", NATS: nc, HealthInterval: 50 * time.Millisecond,
			ScoreLimit: 1000, TimeLimit: 3 * time.Second, // ends by its time limit (counted in ticks)
		})
	}()
	ready, i := hb.wait(t, events.DGSReady, 0)
	gameAddr := netip.MustParseAddrPort(ready.GameAddr)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	session := uuid.New()
	players := []uuid.UUID{uuid.New(), uuid.New()}
	b, _ := json.Marshal(events.Allocation{SessionID: session.String(), GameMode: "arena",
		Players:     []string{players[0].String(), players[1].String()},
		ConnectKeys: []string{base64.StdEncoding.EncodeToString(pub)}})
	if _, err := nc.Request(events.DGSAllocateSubject(cell, "dgs-8"), b, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_, i = hb.wait(t, events.DGSAllocated, i)

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	var clients []*gameconn.Client
	for _, p := range players {
		tok, err := connecttoken.Mint(priv, connecttoken.Token{
			SessionID: session, PlayerID: p, ExpiresAt: time.Now().Add(time.Minute), ServerAddr: gameAddr,
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := gameconn.Dial(dctx, gameconn.ClientConfig{Addr: net.UDPAddrFromAddrPort(gameAddr), Token: tok})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	snaps := make([]int, len(clients))
	var wg sync.WaitGroup
	for k, c := range clients {
		// A cut match may leave a client waiting forever: close it well
		// after the time limit so the test fails instead of hanging.
		stuck := time.AfterFunc(20*time.Second, func() { c.Close() })
		defer stuck.Stop()
		wg.Add(1)
		go func() { defer wg.Done(); snaps[k] = len(dgstest.Bot(c)) }()
	}
	// Both joined: the match is running. Ask the server to shut down.
	if err := nc.Publish(events.DGSShutdownSubject(cell, "dgs-8"), nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for k, c := range clients {
		end, ok := c.End()
		if !ok || end.Reason != wire.EndTimeLimit {
			t.Fatalf("player %d: end %+v %v (err %v) after %d snapshots: the shutdown cut the match", k, end, ok, c.Err(), snaps[k])
		}
	}
	hb.wait(t, events.DGSShutdown, i)
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunServer did not return")
	}
	hb.mu.Lock()
	for _, h := range hb.all[i:] {
		if h.State == events.DGSReady {
			t.Errorf("the server went back to Ready after a shutdown request: %+v", h)
		}
	}
	hb.mu.Unlock()
	jctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(jctx, events.MatchStream(cell))
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(jctx, events.MatchResultSubject(cell))
	if err != nil {
		t.Fatal(err)
	}
	var res events.MatchResult
	if err := json.Unmarshal(m.Data, &res); err != nil {
		t.Fatal(err)
	}
	if res.SessionID != session.String() || res.Reason != "time_limit" || len(res.Players) != 2 {
		t.Fatalf("result %+v", res)
	}
	for _, p := range res.Players {
		if p.InputsAccepted == 0 {
			t.Fatalf("player %s had no input accepted: %+v", p.PlayerID, res)
		}
	}
}
