package matchmaker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entry is the compact form of a queued ticket that sits in the pool's
// sorted set: everything Form needs, nothing else. Its string form is the
// sorted-set member, so it never changes while the ticket is queued.
type Entry struct {
	TicketID  string
	Rating    int       // mean rating of the ticket's players
	Size      int       // players on the ticket (a party is > 1)
	CreatedAt time.Time // when the ticket joined; the window widens from here
	LatencyMS int       // reported latency to this cell; 0 = not reported
}

// String encodes e as "id|rating|size|created_ms|latency_ms".
func (e Entry) String() string {
	return e.TicketID + "|" + strconv.Itoa(e.Rating) + "|" + strconv.Itoa(e.Size) + "|" +
		strconv.FormatInt(e.CreatedAt.UnixMilli(), 10) + "|" + strconv.Itoa(e.LatencyMS)
}

// ParseEntry is the inverse of Entry.String.
func ParseEntry(s string) (Entry, error) {
	f := strings.Split(s, "|")
	if len(f) != 5 {
		return Entry{}, fmt.Errorf("pool entry %q: want 5 fields", s)
	}
	var e Entry
	var err error
	var ms int64
	e.TicketID = f[0]
	if e.Rating, err = strconv.Atoi(f[1]); err == nil {
		if e.Size, err = strconv.Atoi(f[2]); err == nil {
			if ms, err = strconv.ParseInt(f[3], 10, 64); err == nil {
				e.LatencyMS, err = strconv.Atoi(f[4])
			}
		}
	}
	if err != nil {
		return Entry{}, fmt.Errorf("pool entry %q: %w", s, err)
	}
	e.CreatedAt = time.UnixMilli(ms)
	return e, nil
}

// Formed is one match proposed by Form: its tickets and, per team, the
// indexes into Tickets of the tickets placed on that team.
type Formed struct {
	Tickets []Entry
	Teams   [][]int
}

// Form proposes matches among entries at time now. entries need not be
// sorted and are not modified. A ticket appears in at most one proposal.
//
// Rules: a match has exactly mode.Players() players; every pair of tickets
// lies inside each other's window (mode.Window of its queue time), and the
// whole match inside mode.MaxSkillSpread; a party stays on one team; teams
// are filled to balance their rating sums; a ticket whose latency is above
// mode.MaxLatency is never matched (Join refuses those; this only matters
// when the limit was lowered under queued tickets).
//
// Tickets are swept in rating order; each unused ticket anchors a candidate
// group of the nearest-rated compatible tickets above it. The sweep stops
// looking above an anchor once the rating gap exceeds the group's narrowest
// window, so one call costs O(n log n) for the sort plus roughly O(n·k) with
// k the tickets inside one window.
func Form(mode GameMode, now time.Time, entries []Entry) []Formed {
	need := mode.Players()
	maxLat := int(mode.MaxLatency / time.Millisecond)
	type cand struct {
		e Entry
		w int
	}
	cs := make([]cand, 0, len(entries))
	for _, e := range entries {
		if e.Size < 1 || e.Size > mode.TeamSize {
			continue
		}
		if maxLat > 0 && e.LatencyMS > maxLat {
			continue
		}
		cs = append(cs, cand{e: e, w: mode.Window(now.Sub(e.CreatedAt))})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.e.Rating != b.e.Rating {
			return a.e.Rating - b.e.Rating
		}
		return a.e.CreatedAt.Compare(b.e.CreatedAt)
	})
	spread := mode.spreadCap()
	used := make([]bool, len(cs))
	var out []Formed
	group := make([]int, 0, need)
	for i := range cs {
		if used[i] {
			continue
		}
		group = append(group[:0], i)
		left := need - cs[i].e.Size
		minW := min(cs[i].w, spread)
		for j := i + 1; j < len(cs) && left > 0; j++ {
			if used[j] {
				continue
			}
			gap := cs[j].e.Rating - cs[i].e.Rating
			if gap > minW {
				break // sorted: every later ticket is further away
			}
			if gap > cs[j].w || cs[j].e.Size > left {
				continue
			}
			group = append(group, j)
			left -= cs[j].e.Size
			minW = min(minW, cs[j].w)
		}
		if left != 0 {
			continue
		}
		tickets := make([]Entry, len(group))
		for k, g := range group {
			tickets[k] = cs[g].e
		}
		teams, ok := Balance(mode, tickets)
		if !ok {
			continue
		}
		for _, g := range group {
			used[g] = true
		}
		out = append(out, Formed{Tickets: tickets, Teams: teams})
	}
	return out
}

// Balance places tickets on mode.Teams teams of mode.TeamSize players:
// parties first (largest first, into the team with the most room, then the
// lowest rating sum), then solo players from the highest rating down into
// the team with the lowest rating sum that has room. It reports false when
// the parties cannot be packed.
func Balance(mode GameMode, tickets []Entry) ([][]int, bool) {
	order := make([]int, len(tickets))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if tickets[a].Size != tickets[b].Size {
			return tickets[b].Size - tickets[a].Size
		}
		return tickets[b].Rating - tickets[a].Rating
	})
	room := make([]int, mode.Teams)
	sum := make([]int, mode.Teams)
	teams := make([][]int, mode.Teams)
	for t := range room {
		room[t] = mode.TeamSize
	}
	for _, i := range order {
		e := tickets[i]
		best := -1
		for t := range room {
			if room[t] < e.Size {
				continue
			}
			switch {
			case best < 0:
				best = t
			case e.Size > 1 && room[t] != room[best]:
				if room[t] > room[best] {
					best = t
				}
			case sum[t] < sum[best]:
				best = t
			case sum[t] == sum[best] && room[t] > room[best]:
				best = t
			}
		}
		if best < 0 {
			return nil, false
		}
		room[best] -= e.Size
		sum[best] += e.Rating * e.Size
		teams[best] = append(teams[best], i)
	}
	for _, r := range room {
		if r != 0 {
			return nil, false
		}
	}
	return teams, true
}
