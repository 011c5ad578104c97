package cell

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

// twoCells starts cells "cell-a" (fleet capped at max servers) and
// "cell-b" on one supercluster and one database, each with its own Redis,
// as two regions of one deployment.
func twoCells(t *testing.T, maxA int, mutateB func(*Config)) (a, b *env) {
	t.Helper()
	testenv.PostgresURL(t, "postgres")
	testenv.CheckGoroutines(t)
	database := testenv.NewDatabase(t)
	sc := testenv.NewSuperCluster(t, "cell-a", "cell-b", "global")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := accesstoken.SigningKey{KID: "k1", Private: priv}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{accesstoken.PublicJWK("k1", pub)}})
	js := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	t.Cleanup(js.Close)
	start := func(id string, mutate func(*Config)) *env {
		rd := testenv.NewRedis(t)
		nc := testenv.Connect(t, sc.Server(id))
		vctx, vcancel := context.WithCancel(context.Background())
		t.Cleanup(vcancel)
		cfg := DefaultConfig()
		cfg.ID, cfg.GameModes = id, testModes()
		cfg.Matchmaker.TickInterval = 20 * time.Millisecond
		cfg.Fleet.HealthTimeout, cfg.Fleet.AutoscaleInterval = time.Second, 50*time.Millisecond
		cfg.DGS = fleet.Version{Name: "v1", Command: os.Args[0], Args: []string{"--health-interval=100ms", "--wait-for-players=30s", "--time-limit=30s"}}
		cfg.OverflowAfter = time.Nanosecond
		mutate(&cfg)
		c, err := New(cfg, Deps{
			DB: database.Pool, Redis: rd.Client, NATS: nc,
			Verifier: accesstoken.NewRemoteVerifier(vctx, issuer, js.URL),
			Launcher: &fleet.LocalLauncher{Env: []string{realDGSEnv + "=1"}, StopGrace: 2 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("cell %s run: %v", id, err)
			}
		})
		return &env{c: c, key: key, db: database.Pool, rd: rd.Client, nc: nc, stop: cancel}
	}
	a = start("cell-a", func(c *Config) { c.Fleet.Min, c.Fleet.Buffer, c.Fleet.Max = maxA, maxA, maxA })
	b = start("cell-b", func(c *Config) {
		c.Fleet.Buffer, c.Fleet.Max = 1, 2
		if mutateB != nil {
			mutateB(c)
		}
	})
	return a, b
}

func (e *env) joinWith(t *testing.T, player string, lat map[string]int) string {
	t.Helper()
	var out struct {
		TicketID string `json:"ticket_id"`
	}
	res := e.call(t, "POST", "/matchmaking/join", player, map[string]any{"game_mode": "duel", "latencies_ms": lat}, &out)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("join: %d", res.StatusCode)
	}
	return out.TicketID
}

// TestOverflowToNextCellWhenFleetFull: cell-a's fleet (one server) is
// busy with the first duel; the second duel formed in cell-a is hosted by
// cell-b, which every player reported within the limit: the tickets in
// cell-a point at cell-b's relay with tokens cell-b signed, and cell-b
// recorded the session. Players out of cell-b's reach stay queued.
func TestOverflowToNextCellWhenFleetFull(t *testing.T) {
	a, b := twoCells(t, 1, nil)
	ps := newPlayers(6)
	near := map[string]int{"cell-a": 20, "cell-b": 60}
	t1, t2 := a.joinWith(t, ps[0], near), a.joinWith(t, ps[1], near)
	first := a.waitReady(t, ps[0], t1)
	a.waitReady(t, ps[1], t2)
	if first.Session.RelayAddr != a.c.RelayAddr() || first.Session.Region != "cell-a" {
		t.Fatalf("first match not local: %+v", first.Session)
	}

	// Too far from cell-b (limit 150 ms): not overflowed, stays queued.
	far := map[string]int{"cell-a": 20, "cell-b": 400}
	f1, f2 := a.joinWith(t, ps[4], far), a.joinWith(t, ps[5], far)

	t3, t4 := a.joinWith(t, ps[2], near), a.joinWith(t, ps[3], near)
	v3, v4 := a.waitReady(t, ps[2], t3), a.waitReady(t, ps[3], t4)
	s := v3.Session
	if s.ID != v4.Session.ID || s.RelayAddr != b.c.RelayAddr() || s.Region != "cell-b" {
		t.Fatalf("second match %+v, want hosted by cell-b (relay %s)", s, b.c.RelayAddr())
	}
	ver, _ := connecttoken.NewVerifier(b.c.ConnectPublicKey())
	for i, v := range []ticketView{v3, v4} {
		raw, err := connecttoken.DecodeString(v.Session.ConnectToken)
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := ver.Verify(raw, time.Now()); err != nil || tok.PlayerID.String() != ps[2+i] {
			t.Fatalf("token of player %d not cell-b's: %+v %v", i, tok, err)
		}
	}
	var region string
	if err := a.db.QueryRow(context.Background(), `SELECT region FROM game_sessions WHERE id = $1`, s.ID).Scan(&region); err != nil || region != "cell-b" {
		t.Fatalf("session recorded in %q (%v), want cell-b", region, err)
	}
	for _, p := range []struct{ player, ticket string }{{ps[4], f1}, {ps[5], f2}} {
		if v, code := a.status(t, p.player, p.ticket); code != 200 || v.State == "ready" {
			t.Fatalf("far player's ticket: %d %+v", code, v)
		}
	}
}

// TestOverflowRefusedByDrainingCell: a draining cell-b hosts nothing; the
// match waits in cell-a instead of landing there.
func TestOverflowRefusedByDrainingCell(t *testing.T) {
	a, b := twoCells(t, 1, nil)
	b.c.SetDraining(true)
	ps := newPlayers(4)
	near := map[string]int{"cell-a": 20, "cell-b": 60}
	t1, t2 := a.joinWith(t, ps[0], near), a.joinWith(t, ps[1], near)
	a.waitReady(t, ps[0], t1)
	a.waitReady(t, ps[1], t2)
	t3 := a.joinWith(t, ps[2], near)
	a.joinWith(t, ps[3], near)
	// Give the matchmaker many ticks to (wrongly) place it.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if v, _ := a.status(t, ps[2], t3); v.State == "ready" {
			t.Fatalf("match placed while the only other cell drains: %+v", v.Session)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.c.SetDraining(false)
	v := a.waitReady(t, ps[2], t3)
	if v.Session.RelayAddr != b.c.RelayAddr() {
		t.Fatalf("after undrain: %+v", v.Session)
	}
}
