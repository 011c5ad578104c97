package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/client/bots"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// TestPlayerLoopEndToEnd is the whole player loop on a dev stack: two bots
// log in as guests, probe the cells' beacons, queue for a duel at the best
// cell, get a session and a connect token, play a short match over KCP
// through the relay against a real DGS process, and the match result
// arrives on JetStream and is applied by the global layer (XP, wallet).
// One bot cheats (moves far too fast): the server flags it.
func TestPlayerLoopEndToEnd(t *testing.T) {
	// One cell: on loopback every beacon answers within microseconds, so two
	// bots could pick different cells and never meet.
	st := startStack(t, "eu-west-1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	sum, err := bots.Run(ctx, bots.Config{GlobalURL: st.GlobalURL, Players: 2, Mode: "duel", Cheaters: 1, MatchTimeout: 60 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Finished != 2 || sum.MatchesCompleted != 1 || len(sum.Errors) != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	if sum.InputRTT.N == 0 {
		t.Fatal("no input was acknowledged through the relay")
	}

	// Both bots were in the same cell's match; find its result on JetStream.
	// The DGS publishes it after sending END, so the bots may be done first.
	var res events.MatchResult
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, c := range st.Cells {
			nc, err := nats.Connect(st.ClusterNATSURL(c.ID))
			if err != nil {
				return err
			}
			js, _ := jetstream.New(nc)
			s, err := js.Stream(ctx, events.MatchStream(c.ID))
			if err == nil {
				msg, err := s.GetLastMsgForSubject(ctx, events.MatchResultSubject(c.ID))
				if err == nil {
					nc.Close()
					return json.Unmarshal(msg.Data, &res)
				}
			}
			nc.Close()
		}
		return errors.New("no match result on any cell's match stream")
	})
	if len(res.Players) != 2 {
		t.Fatalf("result players: %+v", res.Players)
	}
	var flagged, honest int64 = -1, -1
	for _, p := range res.Players {
		if p.FlaggedInputs > 0 {
			flagged = p.FlaggedInputs
		} else {
			honest = p.FlaggedInputs
		}
	}
	if flagged <= 0 || honest != 0 {
		t.Fatalf("want exactly the cheater flagged: %+v", res.Players)
	}

	// The global layer applied the result exactly once: both players got
	// the per-match XP, and the session is recorded as ended.
	pool := st.DB()
	testenv.Eventually(t, 20*time.Second, func() error {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM players WHERE id = ANY($1::UUID[]) AND xp > 0`,
			[]string{res.Players[0].PlayerID, res.Players[1].PlayerID}).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d of 2 players have XP", n)
		}
		var status string
		if err := pool.QueryRow(ctx, `SELECT status FROM game_sessions WHERE id = $1`, res.SessionID).Scan(&status); err != nil {
			return err
		}
		if status != "ended" {
			return fmt.Errorf("session status %q", status)
		}
		return nil
	})
}

// runDGSChild lets the test binary serve as the DGS the cells launch.
const dgsChildEnv = "CELLGRID_DEVSTACK_TEST_DGS"

func dgsCommand(t *testing.T) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe}
}
