package cell

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Parties by consent (see matchmaker.Party): a party forms by invitation and
// acceptance, and POST /matchmaking/join accepts in "party" only players who
// accepted the caller's party. The routes:
//
//	POST /parties                  create a party; the caller leads it
//	GET  /parties/{id}             members and pending invitations (members and invitees only)
//	POST /parties/{id}/invites     {"player_id"}: the leader invites a player
//	POST /parties/{id}/accept      the invited caller joins the party
//	POST /parties/{id}/leave       a member leaves (their party's queued ticket is
//	                               cancelled), an invitee declines, the leader disbands
//
// A party's ticket is rated at its strongest member's rating (the maximum,
// not the mean), so a strong player cannot lower the bar of the match by
// bringing a weak account along.

func (c *Cell) partyRoutes(mux *httpapi.Router, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("POST /parties", requireAuth(httpapi.Handle(c.createParty)))
	mux.Handle("GET /parties/{id}", requireAuth(httpapi.Handle(c.getParty)))
	mux.Handle("POST /parties/{id}/invites", requireAuth(httpapi.Handle(c.inviteToParty)))
	mux.Handle("POST /parties/{id}/accept", requireAuth(httpapi.Handle(c.acceptParty)))
	mux.Handle("POST /parties/{id}/leave", requireAuth(httpapi.Handle(c.leaveParty)))
}

type partyView struct {
	PartyID string   `json:"party_id"`
	Leader  string   `json:"leader"`
	Members []string `json:"members"`
	Invites []string `json:"invites"`
}

// partyInvite is the body of POST /parties/{id}/invites.
type partyInvite struct {
	PlayerID string `json:"player_id"`
}

// partyLeft is the answer of POST /parties/{id}/leave.
type partyLeft struct {
	PartyID string `json:"party_id"`
	State   string `json:"state"` // left, declined or disbanded
}

func viewOf(p matchmaker.Party) partyView {
	return partyView{PartyID: p.ID, Leader: p.Leader, Members: p.Members, Invites: append([]string{}, p.Invites...)}
}

// partyError maps the matchmaker's party errors to the API's.
func partyError(err error) error {
	switch {
	case errors.Is(err, matchmaker.ErrPartyNotFound):
		return httpapi.NotFound("no such party")
	case errors.Is(err, matchmaker.ErrInParty):
		return httpapi.Conflict("in_party", "already in a party: leave it first")
	case errors.Is(err, matchmaker.ErrNotPartyLeader):
		return httpapi.Forbidden("only the party leader may invite")
	case errors.Is(err, matchmaker.ErrNotInvited):
		return httpapi.Forbidden("not invited to this party")
	case errors.Is(err, matchmaker.ErrNotPartyMember):
		return httpapi.NotFound("no such party")
	case errors.Is(err, matchmaker.ErrPartyFull):
		return httpapi.Conflict("party_full", fmt.Sprintf("a party holds at most %d players and invitations", matchmaker.MaxPartySize))
	}
	return err
}

func partyID(r *http.Request) (string, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return "", httpapi.NotFound("no such party")
	}
	return id.String(), nil
}

func (c *Cell) createParty(w http.ResponseWriter, r *http.Request) error {
	me, err := player(r)
	if err != nil {
		return err
	}
	p, err := c.tickets.CreateParty(r.Context(), me)
	if err != nil {
		return partyError(err)
	}
	httpapi.WriteJSON(w, http.StatusCreated, viewOf(p))
	return nil
}

func (c *Cell) getParty(w http.ResponseWriter, r *http.Request) error {
	me, err := player(r)
	if err != nil {
		return err
	}
	id, err := partyID(r)
	if err != nil {
		return err
	}
	p, err := c.tickets.Party(r.Context(), id)
	if err != nil {
		return partyError(err)
	}
	if !p.IsMember(me) && !p.IsInvited(me) {
		return httpapi.NotFound("no such party")
	}
	httpapi.WriteJSON(w, http.StatusOK, viewOf(p))
	return nil
}

func (c *Cell) inviteToParty(w http.ResponseWriter, r *http.Request) error {
	me, err := player(r)
	if err != nil {
		return err
	}
	id, err := partyID(r)
	if err != nil {
		return err
	}
	var req partyInvite
	if err := httpapi.DecodeJSON(w, r, &req, 4<<10); err != nil {
		return err
	}
	invitee, err := uuid.Parse(req.PlayerID)
	if err != nil {
		return httpapi.BadRequest("invalid_player", "player_id must be a player id")
	}
	if err := c.tickets.InviteToParty(r.Context(), id, me, invitee.String()); err != nil {
		return partyError(err)
	}
	return c.writeParty(w, r.Context(), id)
}

func (c *Cell) acceptParty(w http.ResponseWriter, r *http.Request) error {
	me, err := player(r)
	if err != nil {
		return err
	}
	id, err := partyID(r)
	if err != nil {
		return err
	}
	if err := c.tickets.AcceptParty(r.Context(), id, me); err != nil {
		return partyError(err)
	}
	return c.writeParty(w, r.Context(), id)
}

func (c *Cell) leaveParty(w http.ResponseWriter, r *http.Request) error {
	me, err := player(r)
	if err != nil {
		return err
	}
	id, err := partyID(r)
	if err != nil {
		return err
	}
	p, err := c.tickets.Party(r.Context(), id)
	if err != nil {
		return partyError(err)
	}
	outcome, err := c.tickets.LeaveParty(r.Context(), id, me)
	if err != nil {
		return partyError(err)
	}
	if outcome == "left" {
		// A member who leaves takes themselves off the leader's queued ticket:
		// the ticket is cancelled (the leader may queue again without them).
		if err := c.cancelPartyTicket(r.Context(), p.Leader, me); err != nil {
			return err
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, partyLeft{PartyID: id, State: outcome})
	return nil
}

// cancelPartyTicket cancels member's current ticket when leader owns it and
// it is still queued.
func (c *Cell) cancelPartyTicket(ctx context.Context, leader, member string) error {
	tid, err := c.tickets.LastTicket(ctx, member)
	if errors.Is(err, matchmaker.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t, err := c.tickets.Get(ctx, tid)
	if errors.Is(err, matchmaker.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.Owner != leader || t.State != matchmaker.StateQueued || !t.HasPlayer(member) {
		return nil
	}
	if err := c.tickets.Cancel(ctx, t); err != nil && !errors.Is(err, matchmaker.ErrNotCancellable) && !errors.Is(err, matchmaker.ErrNotFound) {
		return err
	}
	return nil
}

func (c *Cell) writeParty(w http.ResponseWriter, ctx context.Context, id string) error {
	p, err := c.tickets.Party(ctx, id)
	if err != nil {
		return partyError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, viewOf(p))
	return nil
}

// partyConsents checks that every player after the first (the caller) has
// accepted the caller's party, which the caller leads.
func (c *Cell) partyConsents(ctx context.Context, players []string) error {
	if len(players) < 2 {
		return nil
	}
	me := players[0]
	id, err := c.tickets.PartyOf(ctx, me)
	if errors.Is(err, matchmaker.ErrPartyNotFound) {
		return notAccepted("party members must accept your party first (POST /parties, invite, accept)")
	}
	if err != nil {
		return err
	}
	p, err := c.tickets.Party(ctx, id)
	if errors.Is(err, matchmaker.ErrPartyNotFound) {
		return notAccepted("party members must accept your party first (POST /parties, invite, accept)")
	}
	if err != nil {
		return err
	}
	if p.Leader != me {
		return notAccepted("only the party leader may queue the party")
	}
	for _, m := range players[1:] {
		if !slices.Contains(p.Members, m) {
			return notAccepted("player " + m + " has not accepted your party")
		}
	}
	return nil
}

func notAccepted(msg string) error {
	return &httpapi.Error{Status: http.StatusForbidden, Code: "party_not_accepted", Message: msg}
}

// partyRating is the rating a party's ticket is matched at: its strongest
// member's.
func partyRating(players []string, ratings map[string]int) int {
	best := 0
	for i, p := range players {
		if r := ratings[p]; i == 0 || r > best {
			best = r
		}
	}
	return best
}
