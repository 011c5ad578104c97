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

	// The global layer applied the result exactly once. The dev stack's
	// rewards (devstack.DevGlobal): XP 10 per match + 1 per score point +
	// 50 for the win; gold 10 per match + 25 for the win, one ledger row
	// per player keyed by the match; the "score" board keeps the best
	// score and "wins" counts wins.
	pool := st.DB()
	testenv.Eventually(t, 20*time.Second, func() error {
		var status string
		if err := pool.QueryRow(ctx, `SELECT status FROM game_sessions WHERE id = $1`, res.SessionID).Scan(&status); err != nil {
			return err
		}
		if status != "ended" {
			return fmt.Errorf("session status %q", status)
		}
		var applied int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM applied_events WHERE event_id = $1`, res.SessionID).Scan(&applied); err != nil {
			return err
		}
		if applied != 1 {
			return fmt.Errorf("result applied %d times", applied)
		}
		return nil
	})
	winners := 0
	for _, p := range res.Players {
		win := res.Winner == p.PlayerID || (res.Winner == "" && res.WinnerTeam >= 0 && p.Team == res.WinnerTeam)
		wantXP, wantGold, wantWins := 10+max(p.Score, 0), int64(10), int64(0)
		if win {
			winners++
			wantXP, wantGold, wantWins = wantXP+50, wantGold+25, 1
		}
		var xp int64
		if err := pool.QueryRow(ctx, `SELECT xp FROM players WHERE id = $1`, p.PlayerID).Scan(&xp); err != nil {
			t.Fatal(err)
		}
		if xp != wantXP {
			t.Errorf("player %s (score %d, win %v): xp %d, want %d", p.PlayerID, p.Score, win, xp, wantXP)
		}
		rows, err := pool.Query(ctx, `SELECT currency, amount, idempotency_key FROM transactions
			WHERE player_id = $1 AND kind = 'match_reward'`, p.PlayerID)
		if err != nil {
			t.Fatal(err)
		}
		var ledger []string
		for rows.Next() {
			var cur, key string
			var amount int64
			if err := rows.Scan(&cur, &amount, &key); err != nil {
				t.Fatal(err)
			}
			ledger = append(ledger, fmt.Sprintf("%s %d %s", cur, amount, key))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("gold %d match:%s", wantGold, res.SessionID); len(ledger) != 1 || ledger[0] != want {
			t.Errorf("player %s: match reward ledger %q, want exactly [%q]", p.PlayerID, ledger, want)
		}
		// The wallet is the ledger's sum, whatever else (a starting grant)
		// it holds.
		var balance, sum int64
		if err := pool.QueryRow(ctx, `SELECT COALESCE((SELECT balance FROM wallet_balances WHERE player_id = $1 AND currency = 'gold'), 0),
			COALESCE((SELECT sum(amount) FROM transactions WHERE player_id = $1 AND currency = 'gold'), 0)`, p.PlayerID).Scan(&balance, &sum); err != nil {
			t.Fatal(err)
		}
		if balance != sum {
			t.Errorf("player %s: gold balance %d but ledger sums to %d", p.PlayerID, balance, sum)
		}
		boards := map[string]int64{}
		rows, err = pool.Query(ctx, `SELECT leaderboard_id, score FROM leaderboard_records WHERE player_id = $1`, p.PlayerID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var score int64
			if err := rows.Scan(&id, &score); err != nil {
				t.Fatal(err)
			}
			boards[id] = score
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(boards) != 2 || boards["score"] != p.Score || boards["wins"] != wantWins {
			t.Errorf("player %s (score %d, win %v): board records %v, want score=%d wins=%d", p.PlayerID, p.Score, win, boards, p.Score, wantWins)
		}
	}
	if res.Reason != "abandoned" && winners > 1 {
		t.Errorf("%d winners in a duel: %+v", winners, res)
	}
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
