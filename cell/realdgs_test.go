package cell

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/dgs"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

// realDGSEnv makes the re-executed test binary run the real dgs.RunServer
// with the flags the local launcher passes.
const realDGSEnv = "CELLGRID_TEST_REAL_DGS"

func runRealDGS(args []string) int { return dgs.Main(args, os.Stderr) }

// TestRealDGS runs the match flow against the dgs package's RunServer
// (SDK + arena): allocation, tokens for its game address, and the
// abandoned match's result ending the session.
func TestRealDGS(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DGS.Args = []string{"--health-interval=100ms", "--wait-for-players=1s"}
	})
	ps := newPlayers(2)
	t1 := e.join(t, ps[0], "duel")
	e.join(t, ps[1], "duel")
	v := e.waitReady(t, ps[0], t1)
	raw, err := connecttoken.DecodeString(v.Session.ConnectToken)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := connecttoken.Parse(raw)
	found := false
	for _, s := range e.c.Fleet().Servers() {
		if s.GameAddr == tok.ServerAddr.String() {
			found = true
		}
	}
	if !found {
		t.Fatalf("token points at %v, fleet has %+v", tok.ServerAddr, e.c.Fleet().Servers())
	}
	// Nobody connects: the arena abandons the match and publishes a
	// result, which ends the session.
	testenv.Eventually(t, 60*time.Second, func() error {
		var st string
		if err := e.db.QueryRow(context.Background(), `SELECT status FROM game_sessions WHERE id = $1`, v.Session.ID).Scan(&st); err != nil || st != "ended" {
			return fmt.Errorf("status %q %v", st, err)
		}
		return nil
	})
}
