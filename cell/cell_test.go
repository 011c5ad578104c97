package cell

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestMain re-executes the test binary as the real DGS (dgs.Main) when
// the fleet launches it, and stops the shared PostgreSQL afterwards.
func TestMain(m *testing.M) {
	if os.Getenv(realDGSEnv) == "1" {
		os.Exit(runRealDGS(os.Args[1:]))
	}
	os.Exit(testenv.Main(m))
}

const (
	cellID = "test-cell"
	issuer = "https://global.test"
)

type env struct {
	c    *Cell
	key  accesstoken.SigningKey
	db   *pgxpool.Pool
	rd   rueidis.Client
	rds  *testenv.Redis // the server behind rd (Restart)
	nc   *nats.Conn
	stop func()
	// wantRunErr makes stop keep Run's error in runErr instead of failing
	// the test with it.
	wantRunErr bool
	runErr     error
}

func testModes() []matchmaker.GameMode {
	base := matchmaker.GameMode{WindowStart: 50, WindowMax: 200, WidenOver: 30 * time.Second,
		MaxLatency: 150 * time.Millisecond, TicketTTL: 2 * time.Minute, MaxQueued: 10_000}
	duel, duo, squads, tiny := base, base, base, base
	duel.Name, duel.Teams, duel.TeamSize = "duel", 2, 1
	duo.Name, duo.Teams, duo.TeamSize = "duo", 2, 2
	squads.Name, squads.Teams, squads.TeamSize = "squads", 2, 4
	tiny.Name, tiny.Teams, tiny.TeamSize, tiny.MaxQueued, tiny.TicketTTL = "tiny", 2, 1, 1, time.Second
	return []matchmaker.GameMode{duel, duo, squads, tiny}
}

// newEnv starts a cell whose fleet launches the real DGS (this test
// binary re-executed as dgs.Main).
func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	return newEnvHooked(t, mutate, nil)
}

// newEnvHooked is newEnv with hook run on the Cell before Run (tests
// replace its internals there, race-free).
func newEnvHooked(t *testing.T, mutate func(*Config), hook func(*Cell)) *env {
	t.Helper()
	testenv.PostgresURL(t, "postgres") // the shared server (and its reaper goroutine) outlive this test
	testenv.CheckGoroutines(t)
	database := testenv.NewDatabase(t)
	rd := testenv.NewRedis(t)
	_, nc := testenv.NewNATS(t, cellID)

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := accesstoken.SigningKey{KID: "k1", Private: priv}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{accesstoken.PublicJWK("k1", pub)}})
	js := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	t.Cleanup(js.Close)
	vctx, vcancel := context.WithCancel(context.Background())
	t.Cleanup(vcancel)

	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	cfg := DefaultConfig()
	cfg.ID, cfg.GameModes, cfg.ConnectKeySeed = cellID, testModes(), seed
	cfg.Matchmaker.TickInterval = 20 * time.Millisecond
	cfg.Fleet.Buffer, cfg.Fleet.Max = 2, 4
	cfg.Fleet.HealthTimeout, cfg.Fleet.AutoscaleInterval = time.Second, 50*time.Millisecond
	cfg.DGS = fleet.Version{Name: "v1", Command: os.Args[0], Args: []string{"--health-interval=100ms"}}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, Deps{
		DB: database.Pool, Redis: rd.Client, NATS: nc,
		Verifier: accesstoken.NewRemoteVerifier(vctx, issuer, js.URL),
		Launcher: &fleet.LocalLauncher{Env: []string{realDGSEnv + "=1"}, StopGrace: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	e := &env{c: c, key: key, db: database.Pool, rd: rd.Client, rds: rd, nc: nc}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			e.runErr = <-done
			if e.runErr != nil && !e.wantRunErr {
				t.Errorf("cell run: %v", e.runErr)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

func (e *env) token(t testing.TB, player string) string {
	t.Helper()
	s, err := accesstoken.Sign(e.key, issuer, accesstoken.Claims{PlayerID: player}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call does an API request as player (no token when player is "") and
// decodes the JSON answer into out (when not nil).
func (e *env) call(t testing.TB, method, path, player string, body any, out any) *http.Response {
	t.Helper()
	var rb io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rb = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.c.URL()+path, rb)
	if player != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(t, player))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
		}
	}
	return res
}

func (e *env) join(t testing.TB, player, mode string, party ...string) string {
	t.Helper()
	var out struct {
		TicketID string `json:"ticket_id"`
	}
	res := e.call(t, "POST", "/matchmaking/join", player, map[string]any{"game_mode": mode, "party": party, "latencies_ms": map[string]int{cellID: 30}}, &out)
	if res.StatusCode != http.StatusAccepted || out.TicketID == "" {
		t.Fatalf("join: %d %+v", res.StatusCode, out)
	}
	return out.TicketID
}

func (e *env) status(t testing.TB, player, ticket string) (ticketView, int) {
	t.Helper()
	var v ticketView
	res := e.call(t, "GET", "/matchmaking/status?ticket_id="+ticket, player, nil, &v)
	return v, res.StatusCode
}

func (e *env) waitReady(t testing.TB, player, ticket string) ticketView {
	t.Helper()
	var v ticketView
	testenv.Eventually(t, 30*time.Second, func() error {
		var code int
		if v, code = e.status(t, player, ticket); code != 200 || v.State != matchmaker.StateReady {
			return fmt.Errorf("status %d %+v", code, v)
		}
		return nil
	})
	return v
}

func newPlayers(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = uuid.NewString()
	}
	return ps
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
