package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/topology"
)

// RegionOps fails regions over and restores them: the global layer's
// topology.Failover (the same operations `cellgrid region failover|restore`
// send over NATS).
type RegionOps interface {
	FailoverRegion(ctx context.Context, region, to string) error
	Restore(ctx context.Context, region string) error
}

// RegionRequest is the body of a failover or restore.
type RegionRequest struct {
	// To is the region that takes the players (failover only; empty:
	// every other active region).
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
}

// RegionAction is the answer of a failover or restore.
type RegionAction struct {
	Region  string             `json:"region"`
	Before  events.RegionState `json:"before"`
	After   events.RegionState `json:"after"`
	AuditID string             `json:"audit_id"`
}

func (o *Ops) regionState(region string) (events.RegionState, bool) {
	for _, rs := range o.deps.Topology.Regions() {
		if rs.Region == region {
			return rs, true
		}
	}
	return events.RegionState{}, false
}

// regionHandler runs a failover or a restore and audits it, refused or
// not (a refusal is an operator's attempt worth keeping).
func (o *Ops) regionHandler(verb string) httpapi.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req RegionRequest
		if err := httpapi.DecodeJSON(w, r, &req, o.cfg.MaxBody); err != nil {
			return err
		}
		if req.Reason == "" || len(req.Reason) > maxReason {
			return httpapi.BadRequest("invalid_reason", fmt.Sprintf("a reason of 1..%d bytes is required", maxReason))
		}
		region := r.PathValue("region")
		before, ok := o.regionState(region)
		if !ok {
			return &httpapi.Error{Status: http.StatusNotFound, Code: "unknown_region", Message: fmt.Sprintf("no region %q in the topology", region)}
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.cfg.DrainTimeout)
		defer cancel()
		var opErr error
		if verb == "failover" {
			opErr = o.deps.Regions.FailoverRegion(ctx, region, req.To)
		} else {
			opErr = o.deps.Regions.Restore(ctx, region)
		}
		after, _ := o.regionState(region)
		outcome := audit.OutcomeOK
		var afterAny any = after
		if opErr != nil {
			outcome = audit.OutcomeFailed
			afterAny = map[string]string{"error": opErr.Error()}
		}
		c := callerOf(r)
		actx, acancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer acancel()
		entry, err := audit.Record(actx, o.deps.DB, audit.Entry{
			ActorID: c.ID, ActorRole: string(c.Role), Action: "region." + verb, Target: region, Reason: req.Reason, Outcome: outcome,
		}, before, afterAny)
		if err != nil {
			return err
		}
		o.actions.WithLabelValues("region."+verb, outcome).Inc()
		switch {
		case errors.Is(opErr, topology.ErrRegionOp):
			return &httpapi.Error{Status: http.StatusConflict, Code: "region_op_refused", Message: opErr.Error()}
		case opErr != nil:
			return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the failover store did not answer", RetryAfter: time.Second, Err: opErr}
		}
		httpapi.WriteJSON(w, http.StatusOK, RegionAction{Region: region, Before: before, After: after, AuditID: entry.ID.String()})
		return nil
	}
}
