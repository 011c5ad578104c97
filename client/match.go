package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
)

// Ticket states as the cell reports them.
const (
	TicketQueued    = "queued"
	TicketMatched   = "matched"
	TicketReady     = "ready"
	TicketExpired   = "expired"
	TicketCancelled = "cancelled"
)

// JoinRequest is the body of POST /matchmaking/join.
type JoinRequest struct {
	GameMode    string         `json:"game_mode"`
	Party       []string       `json:"party,omitempty"`
	LatenciesMS map[string]int `json:"latencies_ms,omitempty"`
}

// MatchSession is what a ready ticket carries: where and how to play.
type MatchSession struct {
	ID           string    `json:"id"`
	GameMode     string    `json:"game_mode"`
	Region       string    `json:"region"`
	RelayAddr    string    `json:"relay_addr"`
	ConnectToken string    `json:"connect_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// TicketStatus is the answer of GET /matchmaking/status.
type TicketStatus struct {
	TicketID string        `json:"ticket_id"`
	State    string        `json:"state"`
	QueuedMS int64         `json:"queued_ms"`
	Session  *MatchSession `json:"session,omitempty"`
}

// Join queues the player (and party) at cell and returns the ticket id.
func (c *Client) Join(ctx context.Context, cell Cell, req JoinRequest) (string, error) {
	var out struct {
		TicketID string `json:"ticket_id"`
	}
	if err := c.do(ctx, http.MethodPost, cell.API+"/matchmaking/join", req, &out, true); err != nil {
		return "", fmt.Errorf("join %s: %w", cell.ID, err)
	}
	return out.TicketID, nil
}

// Status reads a ticket.
func (c *Client) Status(ctx context.Context, cell Cell, ticketID string) (TicketStatus, error) {
	var st TicketStatus
	err := c.do(ctx, http.MethodGet, cell.API+"/matchmaking/status?ticket_id="+url.QueryEscape(ticketID), nil, &st, true)
	if err != nil {
		return TicketStatus{}, fmt.Errorf("status %s: %w", ticketID, err)
	}
	return st, nil
}

// Cancel cancels a ticket.
func (c *Client) Cancel(ctx context.Context, cell Cell, ticketID string) error {
	if err := c.do(ctx, http.MethodDelete, cell.API+"/matchmaking/tickets/"+url.PathEscape(ticketID), nil, nil, true); err != nil {
		return fmt.Errorf("cancel %s: %w", ticketID, err)
	}
	return nil
}

// ErrTicketEnded means the ticket expired or was cancelled before a match.
var ErrTicketEnded = errors.New("ticket ended without a match")

// WaitMatch polls the ticket every poll interval until it is ready (and
// returns the session), ends, or ctx is done.
func (c *Client) WaitMatch(ctx context.Context, cell Cell, ticketID string, poll time.Duration) (MatchSession, error) {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		st, err := c.Status(ctx, cell, ticketID)
		if err != nil {
			return MatchSession{}, err
		}
		switch st.State {
		case TicketReady:
			if st.Session == nil {
				return MatchSession{}, fmt.Errorf("ticket %s ready without a session", ticketID)
			}
			return *st.Session, nil
		case TicketExpired, TicketCancelled:
			return MatchSession{}, fmt.Errorf("%w: %s", ErrTicketEnded, st.State)
		}
		select {
		case <-ctx.Done():
			return MatchSession{}, ctx.Err()
		case <-t.C:
		}
	}
}

// Play connects to the match's game server through the relay (HELLO with
// the connect token, then KCP end to end) and returns the game connection.
func Play(ctx context.Context, s MatchSession) (*gameconn.Client, error) {
	token, err := connecttoken.DecodeString(s.ConnectToken)
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", s.ID, err)
	}
	addr, err := net.ResolveUDPAddr("udp", s.RelayAddr)
	if err != nil {
		return nil, fmt.Errorf("play %s: relay address: %w", s.ID, err)
	}
	gc, err := gameconn.Dial(ctx, gameconn.ClientConfig{Addr: addr, Token: token})
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", s.ID, err)
	}
	return gc, nil
}
