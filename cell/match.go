package cell

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/cell/session"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/events"
)

// readyDoc is stored on each ticket once its session is ready. GameAddr
// stays server-side: it is needed to re-mint a token, never shown.
type readyDoc struct {
	ID       string `json:"id"`
	GameMode string `json:"game_mode"`
	Region   string `json:"region"`
	Relay    string `json:"relay_addr"`
	GameAddr string `json:"game_addr"`
	// Cell is set when another cell hosts the session (overflow.go); its
	// tokens are that cell's to re-mint.
	Cell string `json:"cell,omitempty"`
}

// handleMatch is the matchmaker's Handler: allocate a server, record the
// session, mint tokens, mark the tickets ready. An error sends the tickets
// back to the queue.
func (c *Cell) handleMatch(ctx context.Context, m matchmaker.Match) error {
	sess := session.Session{ID: m.SessionID, Mode: m.Mode.Name, Region: c.cfg.Region, Teams: m.Teams}
	if err := c.sessions.Found(ctx, sess); err != nil {
		c.log.Warn("match.found not published", "session", sess.ID, "err", err)
	}
	alloc, err := c.fleet.Allocate(ctx, events.Allocation{
		SessionID: m.SessionID, GameMode: m.Mode.Name, Players: m.Players(), Teams: m.Teams, ConnectKeys: []string{c.pubB64},
	})
	if err != nil {
		if c.overflowDue(err, m) {
			return c.overflow(ctx, m, err)
		}
		return err
	}
	sess.DGSID, sess.GameAddr, sess.StartedAt = alloc.ServerID, alloc.GameAddr, time.Now()
	if err := c.sessions.Start(ctx, sess); err != nil {
		c.fleet.Release(alloc.ServerID)
		return err
	}
	tokens := make(map[string]string, len(sess.Players()))
	for _, p := range sess.Players() {
		tok, err := c.mint(sess.ID, p, alloc.GameAddr)
		if err != nil {
			c.fleet.Release(alloc.ServerID)
			return err
		}
		tokens[p] = tok
	}
	doc, _ := json.Marshal(readyDoc{ID: sess.ID, GameMode: sess.Mode, Region: c.cfg.Region, Relay: c.relayPub, GameAddr: alloc.GameAddr.String()})
	if err := c.markReady(ctx, m, string(doc), tokens); err != nil {
		// Nobody will be told about this session: give its server back
		// and close it, or the server idles allocated until its time
		// limit and the relay keeps accepting its tokens. The session is
		// closed first: the released server's shutdown result must find
		// it aborted. The matchmaker requeues the tickets when they are
		// still claimed for it (on ErrClaimLost the janitor already did).
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if aerr := c.sessions.Abort(actx, sess); aerr != nil {
			c.log.Warn("session not aborted", "session", sess.ID, "err", aerr)
		}
		c.fleet.Release(alloc.ServerID)
		return fmt.Errorf("match %s: %w", sess.ID, err)
	}
	return nil
}

// mint signs one player's connect token for a session's server.
func (c *Cell) mint(sessionID, player string, game netip.AddrPort) (string, error) {
	sid, err := uuid.Parse(sessionID)
	if err != nil {
		return "", fmt.Errorf("mint token: session id: %w", err)
	}
	pid, err := uuid.Parse(player)
	if err != nil {
		return "", fmt.Errorf("mint token: player id %q: %w", player, err)
	}
	b, err := connecttoken.Mint(c.key, connecttoken.Token{
		SessionID: sid, PlayerID: pid, ExpiresAt: time.Now().Add(c.cfg.ConnectTokenTTL), ServerAddr: game,
	})
	if err != nil {
		return "", err
	}
	return connecttoken.EncodeString(b), nil
}
