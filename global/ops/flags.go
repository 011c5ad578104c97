package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Verdicts of a flag review.
const (
	VerdictCleared   = "cleared"   // a false positive
	VerdictConfirmed = "confirmed" // the player cheated
)

// Review is an operator's current verdict on a flag.
type Review struct {
	Verdict    string    `json:"verdict"`
	Note       string    `json:"note"`
	ReviewerID uuid.UUID `json:"reviewer_id"`
	ReviewedAt time.Time `json:"reviewed_at"`
}

// ReviewedFlag is an anomaly flag (global/telemetry's player_flags) with
// its review, if any.
type ReviewedFlag struct {
	ID          uuid.UUID `json:"id"`
	PlayerID    uuid.UUID `json:"player_id"`
	Rule        string    `json:"rule"`
	WindowStart time.Time `json:"window_start"`
	Observed    int64     `json:"observed"`
	Threshold   int64     `json:"threshold"`
	Detail      string    `json:"detail"`
	CreatedAt   time.Time `json:"created_at"`
	Review      *Review   `json:"review,omitempty"`
}

// FlagList is the answer of GET /ops/flags.
type FlagList struct {
	Flags []ReviewedFlag `json:"flags"`
}

// ReviewRequest is the body of a review.
type ReviewRequest struct {
	Verdict string `json:"verdict"`
	Note    string `json:"note"`
}

// handleFlags lists flags newest first: GET /ops/flags?status=open|reviewed|all&limit=.
func (o *Ops) handleFlags(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return httpapi.BadRequest("invalid_limit", "limit must be 1..1000")
		}
		limit = n
	}
	status := q.Get("status")
	switch status {
	case "":
		status = "open"
	case "open", "reviewed", "all":
	default:
		return httpapi.BadRequest("invalid_status", "status must be open, reviewed or all")
	}
	flags, err := o.listFlags(r.Context(), status, limit)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, FlagList{Flags: flags})
	return nil
}

// listFlags returns flags newest first: status "open" (no review yet),
// "reviewed" or "all".
func (o *Ops) listFlags(ctx context.Context, status string, limit int) ([]ReviewedFlag, error) {
	rows, err := o.deps.DB.Query(ctx, `
		SELECT f.id, f.player_id, f.rule, f.window_start, f.observed, f.threshold, f.detail, f.created_at,
		       r.verdict, r.note, r.reviewer_id, r.reviewed_at
		FROM player_flags f LEFT JOIN flag_reviews r ON r.flag_id = f.id
		WHERE $1 = 'all' OR ($1 = 'open' AND r.flag_id IS NULL) OR ($1 = 'reviewed' AND r.flag_id IS NOT NULL)
		ORDER BY f.created_at DESC, f.id LIMIT $2`, status, limit)
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	flags, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReviewedFlag, error) {
		var f ReviewedFlag
		var verdict, note *string
		var reviewer *uuid.UUID
		var at *time.Time
		err := row.Scan(&f.ID, &f.PlayerID, &f.Rule, &f.WindowStart, &f.Observed, &f.Threshold, &f.Detail, &f.CreatedAt,
			&verdict, &note, &reviewer, &at)
		f.WindowStart, f.CreatedAt = f.WindowStart.UTC(), f.CreatedAt.UTC()
		if verdict != nil {
			f.Review = &Review{Verdict: *verdict, Note: *note, ReviewerID: *reviewer, ReviewedAt: at.UTC()}
		}
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	if flags == nil {
		flags = []ReviewedFlag{}
	}
	return flags, nil
}

var errNoFlag = errors.New("no such flag")

// handleReview records a verdict on a flag (or changes it), with its audit
// row in the same transaction: POST /ops/flags/{flagId}/review.
func (o *Ops) handleReview(w http.ResponseWriter, r *http.Request) error {
	flagID, err := uuid.Parse(r.PathValue("flagId"))
	if err != nil {
		return httpapi.BadRequest("invalid_flag_id", "flagId must be a UUID")
	}
	var req ReviewRequest
	if err := httpapi.DecodeJSON(w, r, &req, o.cfg.MaxBody); err != nil {
		return err
	}
	if req.Verdict != VerdictCleared && req.Verdict != VerdictConfirmed {
		return httpapi.BadRequest("invalid_verdict", "verdict must be cleared or confirmed")
	}
	if len(req.Note) > maxReason {
		return httpapi.BadRequest("invalid_reason", fmt.Sprintf("note is at most %d bytes", maxReason))
	}
	c := callerOf(r)
	var out ReviewedFlag
	err = db.RunTx(r.Context(), o.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		out = ReviewedFlag{}
		var before *Review
		var verdict, note *string
		var reviewer *uuid.UUID
		var at *time.Time
		err := tx.QueryRow(ctx, `
			SELECT f.id, f.player_id, f.rule, f.window_start, f.observed, f.threshold, f.detail, f.created_at,
			       r.verdict, r.note, r.reviewer_id, r.reviewed_at
			FROM player_flags f LEFT JOIN flag_reviews r ON r.flag_id = f.id WHERE f.id = $1`, flagID).
			Scan(&out.ID, &out.PlayerID, &out.Rule, &out.WindowStart, &out.Observed, &out.Threshold, &out.Detail, &out.CreatedAt,
				&verdict, &note, &reviewer, &at)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoFlag
		}
		if err != nil {
			return fmt.Errorf("review: %w", err)
		}
		out.WindowStart, out.CreatedAt = out.WindowStart.UTC(), out.CreatedAt.UTC()
		if verdict != nil {
			before = &Review{Verdict: *verdict, Note: *note, ReviewerID: *reviewer, ReviewedAt: at.UTC()}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if _, err := tx.Exec(ctx, `INSERT INTO flag_reviews (flag_id, player_id, verdict, note, reviewer_id, reviewed_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (flag_id) DO UPDATE SET verdict = excluded.verdict, note = excluded.note,
				reviewer_id = excluded.reviewer_id, reviewed_at = excluded.reviewed_at`,
			flagID, out.PlayerID, req.Verdict, req.Note, c.ID, now); err != nil {
			return fmt.Errorf("review: %w", err)
		}
		out.Review = &Review{Verdict: req.Verdict, Note: req.Note, ReviewerID: c.ID, ReviewedAt: now}
		var beforeAny any
		if before != nil {
			beforeAny = before
		}
		_, err = audit.Append(ctx, tx, audit.Entry{
			ActorID: c.ID, ActorRole: string(c.Role), Action: "flag.review", Target: "flag:" + flagID.String(), Reason: req.Note,
		}, beforeAny, map[string]any{"verdict": req.Verdict, "player_id": out.PlayerID, "rule": out.Rule})
		return err
	})
	if errors.Is(err, errNoFlag) {
		return &httpapi.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such flag"}
	}
	if err != nil {
		return err
	}
	o.actions.WithLabelValues("flag.review", audit.OutcomeOK).Inc()
	o.mu.Lock()
	o.slowTime = time.Time{} // the console's open flags change now
	o.mu.Unlock()
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
