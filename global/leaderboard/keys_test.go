package leaderboard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/global/leaderboard"
)

// TestReadsOfUnknownBoardsCreateNoKeys: reads of regions and seasons that
// hold no records, or seasons that have not happened, leave Redis exactly
// as it was: a reader cannot grow the keyspace by inventing names.
func TestReadsOfUnknownBoardsCreateNoKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.player(t, "ann")
	e.submit(t, leaderboard.Score{Board: "high", PlayerID: a, Region: "eu", Value: 10})
	// The real boards, read once (built from the database).
	for _, q := range []leaderboard.Query{{Board: "high"}, {Board: "high", Region: "eu"}} {
		if p, err := e.lb.Read(ctx, q); err != nil || scores(p) != "1:ann=10 " {
			t.Fatalf("%+v: %q %v", q, scores(p), err)
		}
	}
	keys := func() []string {
		ks, err := e.redis.Client.Do(ctx, e.redis.Client.B().Keys().Pattern("*").Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ks)
		return ks
	}
	before := keys()
	zero, future, far := 0, 1, 1<<30
	for i := range 50 {
		region := fmt.Sprintf("nowhere-%d", i)
		if p, err := e.lb.Read(ctx, leaderboard.Query{Board: "high", Region: region}); err != nil || len(p.Entries) != 0 {
			t.Fatalf("unknown region: %+v %v", p, err)
		}
		if _, err := e.lb.Read(ctx, leaderboard.Query{Board: "high", Region: region, Around: a}); !errors.Is(err, leaderboard.ErrNotRanked) {
			t.Fatalf("around in an unknown region: %v", err)
		}
	}
	for _, s := range []*int{&future, &far} {
		for _, q := range []leaderboard.Query{{Board: "high", Season: s}, {Board: "high", Region: "eu", Season: s}, {Board: "laps", Season: s}} {
			if _, err := e.lb.Read(ctx, q); !errors.Is(err, leaderboard.ErrUnknownSeason) {
				t.Fatalf("season %d of %s: %v, want ErrUnknownSeason", *s, q.Board, err)
			}
		}
	}
	// Boards with no records yet (current season 0): empty, no keys either.
	for _, b := range []string{"laps", "wins", "last"} {
		if p, err := e.lb.Read(ctx, leaderboard.Query{Board: b, Season: &zero}); err != nil || len(p.Entries) != 0 {
			t.Fatalf("empty board %s: %+v %v", b, p, err)
		}
		if _, err := e.lb.Read(ctx, leaderboard.Query{Board: b, Around: uuid.NewString()}); !errors.Is(err, leaderboard.ErrNotRanked) {
			t.Fatalf("around on empty board %s: %v", b, err)
		}
	}
	if after := keys(); !slices.Equal(before, after) {
		t.Fatalf("reads created keys:\nbefore %v\nafter  %v", before, after)
	}
	// A first score on an empty board is still read back.
	e.submit(t, leaderboard.Score{Board: "laps", PlayerID: a, Value: 42})
	if p, err := e.lb.Read(ctx, leaderboard.Query{Board: "laps"}); err != nil || scores(p) != "1:ann=42 " {
		t.Fatalf("after the first score: %q %v", scores(p), err)
	}
}
