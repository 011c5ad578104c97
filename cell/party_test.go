package cell

import (
	"net/http"
	"slices"
	"testing"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
)

// formParty makes leader's party with members, each accepting themselves.
func (e *env) formParty(t testing.TB, leader string, members ...string) string {
	t.Helper()
	var p partyView
	if res := e.call(t, "POST", "/parties", leader, nil, &p); res.StatusCode != http.StatusCreated || p.PartyID == "" {
		t.Fatalf("create party: %d %+v", res.StatusCode, p)
	}
	for _, m := range members {
		if res := e.call(t, "POST", "/parties/"+p.PartyID+"/invites", leader, map[string]string{"player_id": m}, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("invite %s: %d", m, res.StatusCode)
		}
		if res := e.call(t, "POST", "/parties/"+p.PartyID+"/accept", m, nil, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("accept %s: %d", m, res.StatusCode)
		}
	}
	return p.PartyID
}

type apiError struct {
	Error struct{ Code, Message string }
}

// TestPartyByConsent: player A cannot make player B's own join fail, nor
// put B on a ticket, unless B accepted A's party; B can leave, which takes
// B off A's queued ticket.
func TestPartyByConsent(t *testing.T) {
	e := newEnv(t, nil)
	ps := newPlayers(4)
	a, b, c := ps[0], ps[1], ps[2]
	join := func(p string, party ...string) (int, apiError, string) {
		var out struct {
			apiError
			TicketID string `json:"ticket_id"`
		}
		res := e.call(t, "POST", "/matchmaking/join", p, map[string]any{"game_mode": "duo", "party": party}, &out)
		return res.StatusCode, out.apiError, out.TicketID
	}

	// A lists B without B's consent: refused, and B's own join still works.
	if code, out, _ := join(a, b); code != http.StatusForbidden || out.Error.Code != "party_not_accepted" {
		t.Fatalf("join with an unconsenting player: %d %+v", code, out)
	}
	code, out, bt := join(b)
	if code != http.StatusAccepted {
		t.Fatalf("the victim's own join: %d %+v", code, out)
	}
	if res := e.call(t, "DELETE", "/matchmaking/tickets/"+bt, b, nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("cancel: %d", res.StatusCode)
	}

	// A party: created by A, B invited. Invited is not accepted.
	var p partyView
	if res := e.call(t, "POST", "/parties", a, nil, &p); res.StatusCode != http.StatusCreated || p.Leader != a {
		t.Fatalf("create: %d %+v", res.StatusCode, p)
	}
	path := "/parties/" + p.PartyID
	if res := e.call(t, "POST", path+"/invites", c, map[string]string{"player_id": b}, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a non-leader invites: %d", res.StatusCode)
	}
	if res := e.call(t, "POST", path+"/invites", a, map[string]string{"player_id": b}, &p); res.StatusCode != http.StatusOK || !slices.Contains(p.Invites, b) {
		t.Fatalf("invite: %d %+v", res.StatusCode, p)
	}
	if code, out, _ := join(a, b); code != http.StatusForbidden || out.Error.Code != "party_not_accepted" {
		t.Fatalf("join with an invited, not accepted player: %d %+v", code, out)
	}
	if res := e.call(t, "POST", path+"/accept", c, nil, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("accept without an invitation: %d", res.StatusCode)
	}
	if res := e.call(t, "GET", path, c, nil, nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("an outsider reads the party: %d", res.StatusCode)
	}
	if res := e.call(t, "POST", path+"/accept", b, nil, &p); res.StatusCode != http.StatusOK || !slices.Contains(p.Members, b) || len(p.Invites) != 0 {
		t.Fatalf("accept: %d %+v", res.StatusCode, p)
	}
	// B is in A's party: B cannot lead another one, and C is still refused.
	if res := e.call(t, "POST", "/parties", b, nil, nil); res.StatusCode != http.StatusConflict {
		t.Fatalf("a member creates a party: %d", res.StatusCode)
	}
	if code, _, _ := join(a, b, c); code != http.StatusForbidden {
		t.Fatalf("join with B and an unconsenting C: %d", code)
	}
	// Accepted: A queues the party.
	code, out, at := join(a, b)
	if code != http.StatusAccepted {
		t.Fatalf("party join: %d %+v", code, out)
	}
	if v, _ := e.status(t, b, at); !slices.Equal(v.Players, []string{a, b}) || v.State != matchmaker.StateQueued {
		t.Fatalf("party ticket: %+v", v)
	}
	// B leaves: off the party and off A's queued ticket; B can play alone.
	var left map[string]string
	if res := e.call(t, "POST", path+"/leave", b, nil, &left); res.StatusCode != http.StatusOK || left["state"] != "left" {
		t.Fatalf("leave: %d %v", res.StatusCode, left)
	}
	if v, _ := e.status(t, a, at); v.State != matchmaker.StateCancelled {
		t.Fatalf("the party ticket after B left: %+v", v)
	}
	if code, out, _ := join(b); code != http.StatusAccepted {
		t.Fatalf("B alone after leaving: %d %+v", code, out)
	}
	if code, _, _ := join(a, b); code != http.StatusForbidden {
		t.Fatalf("join with a player who left: %d", code)
	}
	// The leader leaving disbands the party.
	if res := e.call(t, "POST", path+"/leave", a, nil, &left); res.StatusCode != http.StatusOK || left["state"] != "disbanded" {
		t.Fatalf("leader leaves: %d %v", res.StatusCode, left)
	}
	if res := e.call(t, "GET", path, a, nil, nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("disbanded party: %d", res.StatusCode)
	}
}

func TestPartyRatingIsTheStrongestMember(t *testing.T) {
	if got := partyRating([]string{"a", "b", "c"}, map[string]int{"a": 1000, "b": 1800, "c": 700}); got != 1800 {
		t.Fatalf("party rating %d, want the strongest member's 1800", got)
	}
	if got := partyRating([]string{"a"}, map[string]int{"a": 950}); got != 950 {
		t.Fatalf("solo rating %d", got)
	}
}
