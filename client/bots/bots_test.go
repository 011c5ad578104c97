package bots

import (
	"context"
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/proto/wire"
)

func TestSummaryGroupsErrorsAndKeepsTimeToMatch(t *testing.T) {
	late := fmt.Errorf("at eu-west-1: %w", context.DeadlineExceeded)
	results := []result{
		{matched: true, timeToMatch: 1 * time.Second, sessionID: "s1", ended: true},
		{matched: true, timeToMatch: 2 * time.Second, sessionID: "s1", ended: true},
		// Matched, then the match outlived the timeout: time to match counts.
		{matched: true, timeToMatch: 3 * time.Second, sessionID: "s2", stage: stagePlay, err: context.DeadlineExceeded},
		{matched: true, timeToMatch: 4 * time.Second, sessionID: "s2", stage: stagePlay, err: context.DeadlineExceeded},
		{matched: true, timeToMatch: 5 * time.Second, sessionID: "s3", stage: stagePlay, err: context.DeadlineExceeded},
		{stage: stageQueue, err: late},
		{stage: stageLogin, err: fmt.Errorf("login: dial: %w", syscall.ECONNREFUSED)},
	}
	s := summarize(Config{MatchTimeout: 3 * time.Minute}, results)
	if s.Players != 7 || s.Finished != 2 || s.Failed != 5 || s.MatchesCompleted != 1 {
		t.Fatalf("counts: %+v", s)
	}
	if s.TimeToMatch.N != 5 || s.TimeToMatch.P50 != 3*time.Second || s.TimeToMatch.P99 != 5*time.Second {
		t.Fatalf("time to match must count every matched bot: %+v", s.TimeToMatch)
	}
	want := []ErrorCount{
		{3, "play: match did not end before --timeout (3m); raise --timeout above the server's match time limit"},
		{1, "login: dial: connection refused; is the dev stack (bin/cellgrid dev) running, or --global pointing at the global layer?"},
		{1, "queue: no match found before --timeout (3m); bots queued in different cells never meet (pin them with --cell), an odd bot in a duel waits alone"},
	}
	if fmt.Sprint(s.Errors) != fmt.Sprint(want) {
		t.Fatalf("errors:\n got %v\nwant %v", s.Errors, want)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3 * time.Minute: "3m", 90 * time.Second: "1m30s", 2 * time.Hour: "2h", 45 * time.Second: "45s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestAimAtNearestConnectedOpponent(t *testing.T) {
	const c = wire.FlagConnected | wire.FlagAlive
	snap := wire.Snapshot{Players: []wire.PlayerState{
		{Slot: 0, X: 1000, Y: 1000, Flags: c},
		{Slot: 1, X: 1000, Y: 3000, Flags: c},              // straight "up" (+Y), 2000 away
		{Slot: 2, X: 0, Y: 1000, Flags: c},                 // -X, 1000 away: nearest
		{Slot: 3, X: 1100, Y: 1000, Flags: wire.FlagAlive}, // nearer, but not connected
	}}
	aim, ok := aimAt(snap, 0)
	if !ok {
		t.Fatal("no target")
	}
	// The server fires along cos/sin of aim/65536 turns (arena sim.fire).
	a := float64(aim) / 65536 * 2 * math.Pi
	if dx, dy := math.Cos(a), math.Sin(a); dx > -0.999 || math.Abs(dy) > 0.01 {
		t.Fatalf("aim %d points (%.3f, %.3f), want (-1, 0)", aim, dx, dy)
	}
	aim, _ = aimAt(snap, 2)
	if a := float64(aim) / 65536 * 2 * math.Pi; math.Cos(a) < 0.999 {
		t.Fatalf("slot 2 aims %d, want +X towards slot 0", aim)
	}
	if _, ok := aimAt(wire.Snapshot{Players: snap.Players[:1]}, 0); ok {
		t.Fatal("alone: want no target")
	}
}
