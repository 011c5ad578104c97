package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// WalletRequest grants (amount > 0) or revokes (amount < 0) currency.
type WalletRequest struct {
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
	Reason   string `json:"reason"`
	// IdempotencyKey makes a retried request act once; a replay answers
	// the current balance with replayed = true.
	IdempotencyKey string `json:"idempotency_key"`
}

// WalletResult is the answer of a grant or revocation.
type WalletResult struct {
	PlayerID string `json:"player_id"`
	Currency string `json:"currency"`
	Before   int64  `json:"before"`
	Balance  int64  `json:"balance"`
	Replayed bool   `json:"replayed"`
	AuditID  string `json:"audit_id,omitempty"`
}

// maxGrant bounds one operator grant or revocation (minor units).
const maxGrant = 1_000_000_000

// handleWallet credits or debits a player's wallet through the store's
// ledger, in one transaction with its audit row.
func (o *Ops) handleWallet(w http.ResponseWriter, r *http.Request) error {
	player, err := uuid.Parse(r.PathValue("playerId"))
	if err != nil {
		return httpapi.BadRequest("invalid_player_id", "playerId must be a UUID")
	}
	var req WalletRequest
	if err := httpapi.DecodeJSON(w, r, &req, o.cfg.MaxBody); err != nil {
		return err
	}
	switch {
	case !o.deps.Store.HasCurrency(req.Currency):
		return httpapi.BadRequest("unknown_currency", fmt.Sprintf("currency %q is not configured", req.Currency))
	case req.Amount == 0 || req.Amount > maxGrant || req.Amount < -maxGrant:
		return httpapi.BadRequest("invalid_amount", fmt.Sprintf("amount must be non-zero and within ±%d", maxGrant))
	case req.Reason == "" || len(req.Reason) > maxReason:
		return httpapi.BadRequest("invalid_reason", fmt.Sprintf("a reason of 1..%d bytes is required", maxReason))
	case req.IdempotencyKey == "" || len(req.IdempotencyKey) > 128:
		return httpapi.BadRequest("invalid_idempotency_key", "idempotency_key of 1..128 bytes is required")
	}
	c := callerOf(r)
	res := WalletResult{PlayerID: player.String(), Currency: req.Currency}
	err = db.RunTx(r.Context(), o.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		res = WalletResult{PlayerID: player.String(), Currency: req.Currency}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM players WHERE id = $1)`, player).Scan(&exists); err != nil {
			return fmt.Errorf("wallet: %w", err)
		}
		if !exists {
			return errNoPlayer
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT balance FROM wallet_balances WHERE player_id = $1 AND currency = $2), 0)`,
			player, req.Currency).Scan(&res.Before); err != nil {
			return fmt.Errorf("wallet: %w", err)
		}
		e := store.Entry{PlayerID: player, Currency: req.Currency, IdempotencyKey: "ops:" + req.IdempotencyKey, Reference: req.Reason}
		var done bool
		var err error
		action := "wallet.grant"
		if req.Amount > 0 {
			e.Kind, e.Amount = store.KindOpsGrant, req.Amount
			done, err = store.Credit(ctx, tx, e)
		} else {
			action = "wallet.revoke"
			e.Kind, e.Amount = store.KindOpsRevoke, -req.Amount
			done, err = store.Debit(ctx, tx, e)
		}
		if err != nil {
			return err
		}
		res.Balance = res.Before
		if !done {
			res.Replayed = true
			return nil
		}
		res.Balance = res.Before + req.Amount
		entry, err := audit.Append(ctx, tx, audit.Entry{
			ActorID: c.ID, ActorRole: string(c.Role), Action: action, Target: "player:" + player.String(), Reason: req.Reason,
		}, map[string]any{"currency": req.Currency, "balance": res.Before},
			map[string]any{"currency": req.Currency, "balance": res.Balance, "amount": req.Amount, "idempotency_key": req.IdempotencyKey})
		if err != nil {
			return err
		}
		res.AuditID = entry.ID.String()
		return nil
	})
	switch {
	case errors.Is(err, errNoPlayer):
		return httpapi.NotFound("no such player")
	case errors.Is(err, store.ErrInsufficientFunds):
		return httpapi.Conflict("insufficient_funds", "the wallet holds less than the revocation")
	case err != nil:
		return err
	}
	if !res.Replayed {
		action := "wallet.grant"
		if req.Amount < 0 {
			action = "wallet.revoke"
		}
		o.actions.WithLabelValues(action, audit.OutcomeOK).Inc()
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}

var errNoPlayer = errors.New("no such player")

// ItemsRequest grants (quantity > 0) or revokes (quantity < 0) items of
// one template.
type ItemsRequest struct {
	ItemTemplateID string `json:"item_template_id"`
	Quantity       int64  `json:"quantity"`
	Reason         string `json:"reason"`
	IdempotencyKey string `json:"idempotency_key"`
}

// ItemsResult is the answer of an item grant or revocation.
type ItemsResult struct {
	PlayerID       string `json:"player_id"`
	ItemTemplateID string `json:"item_template_id"`
	Before         int64  `json:"before"`
	Quantity       int64  `json:"quantity"`
	Replayed       bool   `json:"replayed"`
	AuditID        string `json:"audit_id,omitempty"`
}

// maxItemGrant bounds one operator item grant or revocation.
const maxItemGrant = 10_000

// handleItems adds or removes inventory items through the store's ledger,
// in one transaction with its audit row.
func (o *Ops) handleItems(w http.ResponseWriter, r *http.Request) error {
	player, err := uuid.Parse(r.PathValue("playerId"))
	if err != nil {
		return httpapi.BadRequest("invalid_player_id", "playerId must be a UUID")
	}
	var req ItemsRequest
	if err := httpapi.DecodeJSON(w, r, &req, o.cfg.MaxBody); err != nil {
		return err
	}
	switch {
	case req.ItemTemplateID == "" || len(req.ItemTemplateID) > 128:
		return httpapi.BadRequest("invalid_item", "item_template_id is required")
	case req.Quantity == 0 || req.Quantity > maxItemGrant || req.Quantity < -maxItemGrant:
		return httpapi.BadRequest("invalid_quantity", fmt.Sprintf("quantity must be non-zero and within ±%d", maxItemGrant))
	case req.Reason == "" || len(req.Reason) > maxReason:
		return httpapi.BadRequest("invalid_reason", fmt.Sprintf("a reason of 1..%d bytes is required", maxReason))
	case req.IdempotencyKey == "" || len(req.IdempotencyKey) > 128:
		return httpapi.BadRequest("invalid_idempotency_key", "idempotency_key of 1..128 bytes is required")
	}
	c := callerOf(r)
	action, kind := "items.grant", store.KindOpsItemGrant
	if req.Quantity < 0 {
		action, kind = "items.revoke", store.KindOpsItemRevoke
	}
	var res ItemsResult
	err = db.RunTx(r.Context(), o.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		res = ItemsResult{PlayerID: player.String(), ItemTemplateID: req.ItemTemplateID}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM players WHERE id = $1)`, player).Scan(&exists); err != nil {
			return fmt.Errorf("items: %w", err)
		}
		if !exists {
			return errNoPlayer
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT quantity FROM inventory_items WHERE player_id = $1 AND item_template_id = $2), 0)`,
			player, req.ItemTemplateID).Scan(&res.Before); err != nil {
			return fmt.Errorf("items: %w", err)
		}
		held, applied, err := store.AdjustItems(ctx, tx, store.ItemEntry{PlayerID: player, ItemTemplateID: req.ItemTemplateID,
			Quantity: req.Quantity, Kind: kind, IdempotencyKey: "ops:" + req.IdempotencyKey, Reference: req.Reason})
		if err != nil {
			return err
		}
		res.Quantity, res.Replayed = held, !applied
		if !applied {
			return nil
		}
		entry, err := audit.Append(ctx, tx, audit.Entry{
			ActorID: c.ID, ActorRole: string(c.Role), Action: action, Target: "player:" + player.String(), Reason: req.Reason,
		}, map[string]any{"item_template_id": req.ItemTemplateID, "quantity": res.Before},
			map[string]any{"item_template_id": req.ItemTemplateID, "quantity": held, "change": req.Quantity, "idempotency_key": req.IdempotencyKey})
		if err != nil {
			return err
		}
		res.AuditID = entry.ID.String()
		return nil
	})
	switch {
	case errors.Is(err, errNoPlayer):
		return httpapi.NotFound("no such player")
	case errors.Is(err, store.ErrUnknownItem):
		return httpapi.BadRequest("unknown_item", fmt.Sprintf("no item template %q", req.ItemTemplateID))
	case errors.Is(err, store.ErrMaxStack):
		return httpapi.Conflict("max_stack", "the grant would exceed the item's max stack")
	case errors.Is(err, store.ErrNotEnoughItems):
		return httpapi.Conflict("not_enough_items", "the player holds fewer items than the revocation")
	case err != nil:
		return err
	}
	if !res.Replayed {
		o.actions.WithLabelValues(action, audit.OutcomeOK).Inc()
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}
