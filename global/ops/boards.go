package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// CorrectionRequest sets a player's score on a board's current season
// (Score) or removes the record (Remove).
type CorrectionRequest struct {
	Score  *int64 `json:"score,omitempty"`
	Remove bool   `json:"remove,omitempty"`
	Reason string `json:"reason"`
}

// CorrectionResult is the answer of a leaderboard correction.
type CorrectionResult struct {
	Leaderboard string `json:"leaderboard"`
	Season      int    `json:"season"`
	PlayerID    string `json:"player_id"`
	Before      int64  `json:"before"`
	// Score is the record's score now; absent when it was removed.
	Score   *int64 `json:"score,omitempty"`
	AuditID string `json:"audit_id"`
}

// handleCorrection corrects one record: the database row and its audit
// entry in one transaction, then Redis.
func (o *Ops) handleCorrection(w http.ResponseWriter, r *http.Request) error {
	board := r.PathValue("boardId")
	player, err := uuid.Parse(r.PathValue("playerId"))
	if err != nil {
		return httpapi.BadRequest("invalid_player_id", "playerId must be a UUID")
	}
	var req CorrectionRequest
	if err := httpapi.DecodeJSON(w, r, &req, o.cfg.MaxBody); err != nil {
		return err
	}
	switch {
	case (req.Score == nil) == !req.Remove:
		return httpapi.BadRequest("invalid_correction", "give either score or remove: true")
	case req.Reason == "" || len(req.Reason) > maxReason:
		return httpapi.BadRequest("invalid_reason", fmt.Sprintf("a reason of 1..%d bytes is required", maxReason))
	}
	c := leaderboard.Correction{Board: board, PlayerID: player.String(), Remove: req.Remove}
	if req.Score != nil {
		c.Score = *req.Score
	}
	caller := callerOf(r)
	var before, after leaderboard.Record
	var entry audit.Entry
	err = db.RunTx(r.Context(), o.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if before, after, err = o.deps.Leaderboards.Correct(ctx, tx, c); err != nil {
			return err
		}
		var afterState any = map[string]any{"season": after.Season, "score": after.Score, "region": after.Region}
		if c.Remove {
			afterState = map[string]any{"season": after.Season, "removed": true}
		}
		entry, err = audit.Append(ctx, tx, audit.Entry{
			ActorID: caller.ID, ActorRole: string(caller.Role), Action: "leaderboard.correct",
			Target: "leaderboard:" + board + ":player:" + player.String(), Reason: req.Reason,
		}, map[string]any{"season": before.Season, "score": before.Score, "region": before.Region}, afterState)
		return err
	})
	switch {
	case errors.Is(err, leaderboard.ErrUnknownBoard):
		return &httpapi.Error{Status: http.StatusNotFound, Code: "unknown_leaderboard", Message: fmt.Sprintf("no leaderboard %q", board)}
	case errors.Is(err, leaderboard.ErrNotRanked):
		return &httpapi.Error{Status: http.StatusNotFound, Code: "not_ranked", Message: "the player has no record on this board this season"}
	case err != nil:
		return err
	}
	o.actions.WithLabelValues("leaderboard.correct", audit.OutcomeOK).Inc()
	// The database is the record and the change is committed: a Redis
	// failure is logged, not returned. Redis then shows the old score until
	// the key is rebuilt or the same correction is sent again.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := o.deps.Leaderboards.PublishCorrection(pctx, c, after); err != nil {
		o.log.Warn("leaderboard correction committed but not published", "board", board, "player", player, "err", err)
	}
	res := CorrectionResult{Leaderboard: board, Season: after.Season, PlayerID: player.String(), Before: before.Score, AuditID: entry.ID.String()}
	if !c.Remove {
		res.Score = &after.Score
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}
