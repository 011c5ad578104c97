package matchmaker

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func testMode(name string, teams, size int) GameMode {
	return GameMode{
		Name: name, Teams: teams, TeamSize: size, WindowStart: 50, WindowMax: 200, WidenOver: 30 * time.Second,
		MaxLatency: 150 * time.Millisecond, TicketTTL: 2 * time.Minute, MaxQueued: 1 << 20,
	}
}

func TestWindowWidensLinearly(t *testing.T) {
	m := testMode("duel", 2, 1)
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{0, 50}, {15 * time.Second, 125}, {30 * time.Second, 200}, {time.Hour, 200}} {
		if got := m.Window(c.d); got != c.want {
			t.Errorf("Window(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

func TestFormFarApartPairOnlyAfterWidening(t *testing.T) {
	m := testMode("duel", 2, 1)
	t0 := time.Unix(1_700_000_000, 0)
	es := []Entry{{TicketID: "a", Rating: 1000, Size: 1, CreatedAt: t0}, {TicketID: "b", Rating: 1150, Size: 1, CreatedAt: t0}}
	for _, d := range []time.Duration{0, 10 * time.Second, 19 * time.Second} {
		if f := Form(m, t0.Add(d), es); len(f) != 0 {
			t.Fatalf("matched after %v with windows ±%d: %+v", d, m.Window(d), f)
		}
	}
	f := Form(m, t0.Add(20*time.Second), es) // window ±150
	if len(f) != 1 || len(f[0].Tickets) != 2 {
		t.Fatalf("after 20s: %+v, want one duel", f)
	}
	// A fresh ticket keeps its narrow window even when the other waited long.
	es[1].CreatedAt = t0.Add(40 * time.Second)
	if f := Form(m, t0.Add(40*time.Second), es); len(f) != 0 {
		t.Fatalf("fresh ticket matched outside its own window: %+v", f)
	}
}

func TestFormKeepsPartiesOnOneTeamAndBalances(t *testing.T) {
	m := testMode("duo", 2, 2)
	t0 := time.Unix(1_700_000_000, 0)
	es := []Entry{
		{TicketID: "party", Rating: 1000, Size: 2, CreatedAt: t0},
		{TicketID: "s1", Rating: 1020, Size: 1, CreatedAt: t0},
		{TicketID: "s2", Rating: 990, Size: 1, CreatedAt: t0},
	}
	f := Form(m, t0, es)
	if len(f) != 1 {
		t.Fatalf("got %d matches, want 1", len(f))
	}
	for _, team := range f[0].Teams {
		size := 0
		for _, i := range team {
			size += f[0].Tickets[i].Size
		}
		if size != 2 {
			t.Fatalf("team of %d players: %+v", size, f[0])
		}
		if len(team) == 2 && (f[0].Tickets[team[0]].TicketID == "party" || f[0].Tickets[team[1]].TicketID == "party") {
			t.Fatalf("party shares a team with a solo player: %+v", f[0])
		}
	}

	sq := testMode("squads", 2, 4)
	var solos []Entry
	for i, r := range []int{1000, 1005, 1010, 1015, 1020, 1025, 1030, 1045} {
		solos = append(solos, Entry{TicketID: fmt.Sprint(i), Rating: r, Size: 1, CreatedAt: t0})
	}
	f = Form(sq, t0, solos)
	if len(f) != 1 {
		t.Fatalf("squads: %d matches", len(f))
	}
	var sums [2]int
	for ti, team := range f[0].Teams {
		for _, i := range team {
			sums[ti] += f[0].Tickets[i].Rating
		}
	}
	if d := sums[0] - sums[1]; d > 25 || d < -25 {
		t.Fatalf("unbalanced teams: sums %v", sums)
	}
}

func TestFormRespectsLatencyAndPartySize(t *testing.T) {
	m := testMode("duel", 2, 1)
	t0 := time.Unix(1_700_000_000, 0)
	es := []Entry{
		{TicketID: "a", Rating: 1000, Size: 1, CreatedAt: t0, LatencyMS: 40},
		{TicketID: "far", Rating: 1000, Size: 1, CreatedAt: t0, LatencyMS: 400},
		{TicketID: "party", Rating: 1000, Size: 2, CreatedAt: t0},
	}
	if f := Form(m, t0, es); len(f) != 0 {
		t.Fatalf("matched a ticket over the latency limit or an oversized party: %+v", f)
	}
}

// TestFormInvariants checks, on random pools, that no ticket is proposed
// twice and that every proposal obeys sizes, windows and parties.
func TestFormInvariants(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []GameMode{testMode("duel", 2, 1), testMode("squads", 2, 4), testMode("ffa", 8, 1)} {
		es := make([]Entry, 5000)
		for i := range es {
			size := 1
			if m.TeamSize > 1 {
				size = 1 + r.IntN(m.TeamSize)
			}
			es[i] = Entry{TicketID: fmt.Sprint(i), Rating: 800 + r.IntN(800), Size: size, CreatedAt: t0.Add(-time.Duration(r.IntN(40)) * time.Second)}
		}
		now := t0
		seen := map[string]bool{}
		fs := Form(m, now, es)
		if len(fs) == 0 {
			t.Fatalf("%s: no matches from 5000 tickets", m.Name)
		}
		for _, f := range fs {
			lo, hi, minW, players := 1<<30, 0, 1<<30, 0
			for _, e := range f.Tickets {
				if seen[e.TicketID] {
					t.Fatalf("%s: ticket %s in two matches", m.Name, e.TicketID)
				}
				seen[e.TicketID] = true
				lo, hi = min(lo, e.Rating), max(hi, e.Rating)
				minW = min(minW, m.Window(now.Sub(e.CreatedAt)))
				players += e.Size
			}
			if players != m.Players() {
				t.Fatalf("%s: match of %d players", m.Name, players)
			}
			if hi-lo > minW {
				t.Fatalf("%s: spread %d outside narrowest window %d", m.Name, hi-lo, minW)
			}
			for _, team := range f.Teams {
				n := 0
				for _, i := range team {
					n += f.Tickets[i].Size
				}
				if n != m.TeamSize {
					t.Fatalf("%s: team of %d", m.Name, n)
				}
			}
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	e := Entry{TicketID: "3f1c", Rating: 1234, Size: 3, CreatedAt: time.UnixMilli(1_700_000_000_123), LatencyMS: 42}
	got, err := ParseEntry(e.String())
	if err != nil || !got.CreatedAt.Equal(e.CreatedAt) || got.TicketID != e.TicketID || got.Rating != e.Rating || got.Size != e.Size || got.LatencyMS != e.LatencyMS {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}
