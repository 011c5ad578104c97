package cell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

// defaultRating is a player's rating when the players table has no row.
const defaultRating = 1000

func (c *Cell) routes() http.Handler {
	mux := httpapi.NewRouter()
	requireAuth := c.verifier.Middleware
	mux.Handle("GET /openapi.json", httpapi.ServeDocument(openAPIDocument))
	mux.Handle("POST /matchmaking/join", requireAuth(httpapi.Handle(c.join)))
	mux.Handle("GET /matchmaking/status", requireAuth(httpapi.Handle(c.status)))
	mux.Handle("DELETE /matchmaking/tickets/{id}", requireAuth(httpapi.Handle(c.cancel)))
	c.partyRoutes(mux, requireAuth)
	c.intake.Register(mux, requireAuth)
	return mux
}

type joinRequest struct {
	GameMode    string         `json:"game_mode"`
	Party       []string       `json:"party,omitempty"`
	LatenciesMS map[string]int `json:"latencies_ms,omitempty"`
}

type sessionView struct {
	ID           string    `json:"id"`
	GameMode     string    `json:"game_mode"`
	Region       string    `json:"region"`
	RelayAddr    string    `json:"relay_addr"`
	ConnectToken string    `json:"connect_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

type ticketView struct {
	TicketID string `json:"ticket_id"`
	State    string `json:"state"`
	GameMode string `json:"game_mode"`
	QueuedMS int64  `json:"queued_ms"`
	// RequeueReason says why a matched ticket is queued again.
	RequeueReason string       `json:"requeue_reason,omitempty"`
	Players       []string     `json:"players"`
	Session       *sessionView `json:"session,omitempty"`
}

func player(r *http.Request) (string, error) {
	cl, ok := accesstoken.FromContext(r.Context())
	if !ok {
		return "", httpapi.Unauthorized("missing access token")
	}
	if _, err := uuid.Parse(cl.PlayerID); err != nil {
		return "", httpapi.Forbidden("player id is not a UUID")
	}
	return cl.PlayerID, nil
}

func (c *Cell) join(w http.ResponseWriter, r *http.Request) error {
	me, err := player(r)
	if err != nil {
		return err
	}
	var req joinRequest
	if err := httpapi.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	if c.Draining() {
		return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "cell_draining",
			Message: "this cell is draining: join another cell from the topology", RetryAfter: c.cfg.RetryAfter}
	}
	if rf, ok := c.FailedOver(); ok {
		return c.failedOverError(rf, req.LatenciesMS)
	}
	players, lat, err := parseJoin(req, me, c.cfg.ID)
	if err != nil {
		return err
	}
	if _, ok := c.tickets.Mode(req.GameMode); !ok {
		return httpapi.BadRequest("unknown_game_mode", "unknown game mode")
	}
	// Only players who accepted the caller's party may be on the ticket.
	if err := c.partyConsents(r.Context(), players); err != nil {
		return err
	}
	ratings, err := c.ratings(r.Context(), players)
	if err != nil {
		return err
	}
	t, err := c.tickets.Join(r.Context(), matchmaker.JoinRequest{
		Owner: me, Mode: req.GameMode, Players: players, Rating: partyRating(players, ratings), LatencyMS: lat,
	})
	var full *matchmaker.PoolFullError
	switch {
	case errors.As(err, &full):
		return httpapi.Unavailable("matchmaking pool is full", c.cfg.RetryAfter)
	case err != nil:
		return wireErrors.Wire(err)
	}
	// A member who left between the check and the ticket: their leave did
	// not see the ticket, so this side sees the leave, and cancels.
	if err := c.partyConsents(r.Context(), players); err != nil {
		if cerr := c.tickets.Cancel(r.Context(), t); cerr != nil && !errors.Is(cerr, matchmaker.ErrNotCancellable) {
			return cerr
		}
		return err
	}
	if mode, ok := c.tickets.Mode(req.GameMode); ok {
		c.rememberLatencies(r.Context(), t.ID, mode, req.LatenciesMS)
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]string{"ticket_id": t.ID})
	return nil
}

// parseJoin checks a join request's party and latency: the ticket's
// players (me first, then each distinct party member, canonical UUIDs) and
// the latency to cell (0 when not reported).
func parseJoin(req joinRequest, me, cell string) ([]string, int, error) {
	if len(req.Party) >= matchmaker.MaxPartySize {
		return nil, 0, httpapi.BadRequest("invalid_party", fmt.Sprintf("a party has at most %d players", matchmaker.MaxPartySize))
	}
	players := []string{me}
	seen := map[string]bool{me: true}
	for _, p := range req.Party {
		id, err := uuid.Parse(p)
		if err != nil {
			return nil, 0, httpapi.BadRequest("invalid_party", "party members must be player ids")
		}
		if s := id.String(); !seen[s] {
			seen[s] = true
			players = append(players, s)
		}
	}
	lat := 0
	if ms, ok := req.LatenciesMS[cell]; ok {
		if ms < 0 {
			return nil, 0, httpapi.BadRequest("invalid_latency", "latency must not be negative")
		}
		lat = max(ms, 1)
	}
	return players, lat, nil
}

// ratings returns each player's elo_rating, from the Redis cache or the
// players table (default 1000 when absent), caching what it read.
func (c *Cell) ratings(ctx context.Context, players []string) (map[string]int, error) {
	rd := c.deps.Redis
	keys := make([]string, len(players))
	for i, p := range players {
		keys[i] = c.tickets.Key("elo", p)
	}
	vals, err := rd.Do(ctx, rd.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(players))
	var miss []string
	for i, v := range vals {
		if n, err := v.AsInt64(); err == nil {
			out[players[i]] = int(n)
		} else {
			miss = append(miss, players[i])
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	rows, err := c.deps.DB.Query(ctx, `SELECT id::TEXT, elo_rating FROM players WHERE id = ANY($1::UUID[])`, miss)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for _, p := range miss {
		out[p] = defaultRating
	}
	for rows.Next() {
		var id string
		var elo int
		if err := rows.Scan(&id, &elo); err != nil {
			return nil, err
		}
		out[id] = elo
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cmds := make(rueidis.Commands, 0, len(miss))
	for _, p := range miss {
		cmds = append(cmds, rd.B().Set().Key(c.tickets.Key("elo", p)).Value(strconv.Itoa(out[p])).PxMilliseconds(c.cfg.RatingCacheTTL.Milliseconds()).Build())
	}
	for _, res := range rd.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			c.log.Warn("rating cache write failed", "err", err)
		}
	}
	return out, nil
}

// wireErrors maps the matchmaker's sentinel errors to the wire, once
// (matchmaker.PoolFullError carries the cell's Retry-After: see join).
var wireErrors = httpapi.ErrorTable{
	{Err: matchmaker.ErrActiveTicket, Status: http.StatusConflict, Code: "active_ticket", Message: "a player already has an active ticket"},
	{Err: matchmaker.ErrInvalidTicket, Status: http.StatusBadRequest, Code: "invalid_party", Message: "party does not fit one team"},
	{Err: matchmaker.ErrLatencyTooHigh, Status: http.StatusBadRequest, Code: "latency_too_high", Message: "latency to this cell is above the game mode's limit"},
	{Err: matchmaker.ErrNotCancellable, Status: http.StatusConflict, Code: "not_cancellable", Message: "ticket is no longer queued"},
	{Err: matchmaker.ErrNotFound, Status: http.StatusNotFound, Code: "not_found", Message: "no such ticket"},
}

// ticketFor reads the ticket of the request (ticket_id, or the caller's
// latest ticket) and checks the caller is on it.
func (c *Cell) ticketFor(r *http.Request, id string) (matchmaker.Ticket, string, error) {
	me, err := player(r)
	if err != nil {
		return matchmaker.Ticket{}, "", err
	}
	if id == "" {
		if id, err = c.tickets.LastTicket(r.Context(), me); errors.Is(err, matchmaker.ErrNotFound) {
			return matchmaker.Ticket{}, "", httpapi.NotFound("no ticket")
		} else if err != nil {
			return matchmaker.Ticket{}, "", err
		}
	}
	if _, err := uuid.Parse(id); err != nil {
		return matchmaker.Ticket{}, "", httpapi.NotFound("no such ticket")
	}
	t, err := c.tickets.Get(r.Context(), id)
	if err != nil {
		return t, "", wireErrors.Wire(err)
	}
	if !t.HasPlayer(me) {
		return t, "", httpapi.Forbidden("not your ticket")
	}
	return t, me, nil
}

func (c *Cell) status(w http.ResponseWriter, r *http.Request) error {
	t, me, err := c.ticketFor(r, r.URL.Query().Get("ticket_id"))
	if err != nil {
		return err
	}
	v := ticketView{TicketID: t.ID, State: t.State, GameMode: t.Mode, Players: t.Players, RequeueReason: t.RequeueReason}
	if t.State == matchmaker.StateQueued {
		v.QueuedMS = time.Since(t.CreatedAt).Milliseconds()
	} else {
		v.QueuedMS = t.UpdatedAt.Sub(t.CreatedAt).Milliseconds()
	}
	if t.State == matchmaker.StateReady {
		sv, err := c.sessionFor(r.Context(), t, me)
		if err != nil {
			return err
		}
		v.Session = sv
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
	return nil
}

// sessionFor builds the session answer for player me, re-minting their
// token when the stored one has (nearly) expired.
func (c *Cell) sessionFor(ctx context.Context, t matchmaker.Ticket, me string) (*sessionView, error) {
	var doc readyDoc
	if err := json.Unmarshal([]byte(t.Ready), &doc); err != nil {
		return nil, err
	}
	sv := &sessionView{ID: doc.ID, GameMode: doc.GameMode, Region: doc.Region, RelayAddr: doc.Relay, ConnectToken: t.Tokens[me]}
	if raw, err := connecttoken.DecodeString(sv.ConnectToken); err == nil {
		if tok, err := connecttoken.Parse(raw); err == nil {
			sv.ExpiresAt = tok.ExpiresAt
		}
	}
	if time.Until(sv.ExpiresAt) < c.cfg.ConnectTokenTTL/3 && (doc.Cell == "" || doc.Cell == c.cfg.ID) {
		live, err := c.sessions.SessionLive(ctx, uuid.MustParse(doc.ID))
		if err != nil {
			return nil, err
		}
		if live {
			game, err := netip.ParseAddrPort(doc.GameAddr)
			if err != nil {
				return nil, err
			}
			tok, err := c.mint(doc.ID, me, game)
			if err != nil {
				return nil, err
			}
			if err := c.tickets.SetToken(ctx, t.ID, me, tok); err != nil {
				return nil, err
			}
			sv.ConnectToken, sv.ExpiresAt = tok, time.Now().Add(c.cfg.ConnectTokenTTL)
		}
	}
	return sv, nil
}

func (c *Cell) cancel(w http.ResponseWriter, r *http.Request) error {
	t, me, err := c.ticketFor(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if t.Owner != me {
		return httpapi.Forbidden("only the player who submitted a ticket may cancel it")
	}
	if err := c.tickets.Cancel(r.Context(), t); err != nil {
		return wireErrors.Wire(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"ticket_id": t.ID, "state": matchmaker.StateCancelled})
	return nil
}
