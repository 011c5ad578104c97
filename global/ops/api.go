package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/proto/events"
)

// maxReason bounds the free-text reason of an action.
const maxReason = 500

// ActionRequest is the optional body of a drain or undrain.
type ActionRequest struct {
	Reason string `json:"reason"`
}

// CellAction is the answer of a drain or undrain.
type CellAction struct {
	Cell    string `json:"cell"`
	Before  string `json:"before"`
	State   string `json:"state"`
	AuditID string `json:"audit_id"`
}

// drainHandler sends the cell the same NATS request `cellgrid cell drain`
// (or undrain) sends, and audits it whether or not the cell answered.
func (o *Ops) drainHandler(verb string) httpapi.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req ActionRequest
		if r.ContentLength != 0 {
			if err := httpapi.DecodeJSON(w, r, &req, o.cfg.MaxBody); err != nil {
				return err
			}
		}
		if len(req.Reason) > maxReason {
			return httpapi.BadRequest("invalid_reason", fmt.Sprintf("reason is at most %d bytes", maxReason))
		}
		id := r.PathValue("cellId")
		before := ""
		for _, c := range o.deps.Topology.Cells() {
			if c.ID == id {
				before = c.State
			}
		}
		if before == "" {
			return &httpapi.Error{Status: http.StatusNotFound, Code: "unknown_cell", Message: fmt.Sprintf("no cell %q in the topology", id)}
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.cfg.DrainTimeout)
		defer cancel()
		msg, reqErr := o.deps.NATS.RequestWithContext(ctx, events.CellDrainSubject(id), []byte(verb))
		after, outcome := "", audit.OutcomeOK
		switch {
		case reqErr != nil:
			outcome = audit.OutcomeFailed
			after = "no answer: " + reqErr.Error()
		case strings.HasPrefix(string(msg.Data), "error"):
			outcome, after = audit.OutcomeFailed, string(msg.Data)
		default:
			after = string(msg.Data)
		}
		c := callerOf(r)
		// The audit row outlives a client that hung up.
		actx, acancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer acancel()
		entry, err := audit.Record(actx, o.deps.DB, audit.Entry{
			ActorID: c.ID, ActorRole: string(c.Role), Action: "cell." + verb, Target: id, Reason: req.Reason, Outcome: outcome,
		}, map[string]string{"state": before}, map[string]string{"state": after})
		if err != nil {
			return err
		}
		o.log.Info("ops action", "action", "cell."+verb, "cell", id, "actor", c.ID, "outcome", outcome)
		o.actions.WithLabelValues("cell."+verb, outcome).Inc()
		if outcome != audit.OutcomeOK {
			return &httpapi.Error{Status: http.StatusBadGateway, Code: "cell_unreachable",
				Message: fmt.Sprintf("cell %s did not %s: %s", id, verb, after), Err: reqErr}
		}
		httpapi.WriteJSON(w, http.StatusOK, CellAction{Cell: id, Before: before, State: after, AuditID: entry.ID.String()})
		return nil
	}
}

// handleAudit pages through the audit log, newest first:
// GET /ops/audit?limit=&cursor=&action=.
func (o *Ops) handleAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := audit.DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return httpapi.BadRequest("invalid_limit", fmt.Sprintf("limit must be 1..%d", audit.MaxLimit))
		}
		limit = n
	}
	page, err := audit.List(r.Context(), o.deps.DB, q.Get("cursor"), q.Get("action"), limit)
	if errors.Is(err, audit.ErrBadCursor) {
		return httpapi.BadRequest("invalid_cursor", "cursor is not one this server issued")
	}
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
	return nil
}
