package arena

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/dgs/internal/dgstest"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// fixture is a running arena server with a cell key and one allocation.
type fixture struct {
	t       *testing.T
	srv     *Server
	priv    ed25519.PrivateKey
	alloc   events.Allocation
	players []uuid.UUID
	results chan events.MatchResult
	addr    *net.UDPAddr
}

func newFixture(t *testing.T, cfg Config, nPlayers int) *fixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, priv: priv, results: make(chan events.MatchResult, 4)}
	cfg.OnMatchEnd = func(r events.MatchResult) { f.results <- r }
	cfg.Linger = 200 * time.Millisecond
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, pc)
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.addr = srv, pc.LocalAddr().(*net.UDPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("arena Run did not return")
		}
	})
	for range nPlayers {
		f.players = append(f.players, uuid.New())
	}
	f.alloc = events.Allocation{
		SessionID:   uuid.NewString(),
		GameMode:    "arena",
		ConnectKeys: []string{base64.StdEncoding.EncodeToString(pub)},
	}
	for _, p := range f.players {
		f.alloc.Players = append(f.alloc.Players, p.String())
	}
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	if err := f.srv.StartMatch(f.alloc); err != nil {
		f.t.Fatal(err)
	}
}

// token mints a connect token; mutate adjusts it before signing.
func (f *fixture) token(player uuid.UUID, mutate func(*connecttoken.Token)) []byte {
	f.t.Helper()
	tok := connecttoken.Token{
		SessionID:  uuid.MustParse(f.alloc.SessionID),
		PlayerID:   player,
		ExpiresAt:  time.Now().Add(time.Minute),
		ServerAddr: netip.MustParseAddrPort(f.addr.String()),
	}
	if mutate != nil {
		mutate(&tok)
	}
	b, err := connecttoken.Mint(f.priv, tok)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) dial(ctx context.Context, token []byte) (*gameconn.Client, error) {
	c, err := gameconn.Dial(ctx, gameconn.ClientConfig{Addr: f.addr, Token: token})
	if err == nil {
		f.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (f *fixture) waitResult() events.MatchResult {
	f.t.Helper()
	select {
	case r := <-f.results:
		return r
	case <-time.After(30 * time.Second):
		f.t.Fatal("no match result")
	}
	return events.MatchResult{}
}

func bot(c *gameconn.Client) []wire.Snapshot { return dgstest.Bot(c) }

func dist(a, b *wire.PlayerState) float64 { return dgstest.Dist(a, b) }
