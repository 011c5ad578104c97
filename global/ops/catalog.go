package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// ItemEditRequest creates or replaces one catalog item.
type ItemEditRequest struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Prices      map[string]int64 `json:"prices"`
	MaxStack    int              `json:"max_stack"`
	Tradable    bool             `json:"tradable"`
	Consumable  bool             `json:"consumable"`
	Equippable  bool             `json:"equippable"`
	Reason      string           `json:"reason"`
	// CatalogVersion, when set, is the version the edit was based on: a
	// catalog changed since then refuses the edit (409).
	CatalogVersion int64 `json:"catalog_version,omitempty"`
}

// ItemEditResult is the answer of a catalog edit.
type ItemEditResult struct {
	Item           store.ItemTemplate `json:"item"`
	CatalogVersion int64              `json:"catalog_version"`
	AuditID        string             `json:"audit_id"`
}

// handleItemEdit creates or replaces a catalog item and its prices, bumps
// the catalog version, and audits it, in one transaction.
func (o *Ops) handleItemEdit(w http.ResponseWriter, r *http.Request) error {
	var req ItemEditRequest
	if err := httpapi.DecodeJSON(w, r, &req, o.cfg.MaxBody); err != nil {
		return err
	}
	if req.Reason == "" || len(req.Reason) > maxReason {
		return httpapi.BadRequest("invalid_reason", fmt.Sprintf("a reason of 1..%d bytes is required", maxReason))
	}
	it := store.ItemTemplate{ID: r.PathValue("itemId"), Name: req.Name, Description: req.Description, Prices: req.Prices,
		MaxStack: req.MaxStack, Tradable: req.Tradable, Consumable: req.Consumable, Equippable: req.Equippable}
	if it.Prices == nil {
		it.Prices = map[string]int64{}
	}
	c := callerOf(r)
	var res ItemEditResult
	err := db.RunTx(r.Context(), o.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		before, v, err := o.deps.Store.EditItem(ctx, tx, it, req.CatalogVersion)
		if err != nil {
			return err
		}
		var beforeAny any
		if before != nil {
			beforeAny = before
		}
		entry, err := audit.Append(ctx, tx, audit.Entry{
			ActorID: c.ID, ActorRole: string(c.Role), Action: "catalog.edit", Target: "item:" + it.ID, Reason: req.Reason,
		}, beforeAny, map[string]any{"item": it, "catalog_version": v})
		if err != nil {
			return err
		}
		res = ItemEditResult{Item: it, CatalogVersion: v, AuditID: entry.ID.String()}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrInvalidItem):
		return httpapi.BadRequest("invalid_item", err.Error())
	case errors.Is(err, store.ErrUnknownCurrency):
		return httpapi.BadRequest("unknown_currency", err.Error())
	case errors.Is(err, store.ErrVersionConflict):
		return httpapi.Conflict("catalog_version_conflict", "the catalog changed since the version this edit was based on: reload it")
	case err != nil:
		return err
	}
	o.actions.WithLabelValues("catalog.edit", audit.OutcomeOK).Inc()
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}
