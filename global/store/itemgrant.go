package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Ledger kinds of operator item grants and revocations.
const (
	KindOpsItemGrant  = "ops_item_grant"
	KindOpsItemRevoke = "ops_item_revoke"
)

// ErrNotEnoughItems: a revocation asks for more than the player holds.
var ErrNotEnoughItems = errors.New("not enough items")

// ItemEntry adds (Quantity > 0) or removes (Quantity < 0) items of one
// template.
type ItemEntry struct {
	PlayerID       uuid.UUID
	ItemTemplateID string
	Quantity       int64
	Kind           string
	// IdempotencyKey makes the change happen at most once per (player, key).
	IdempotencyKey string
	Reference      string
}

// AdjustItems applies e to the player's inventory and writes a ledger row
// (currency "", amount 0, the template and the signed quantity), inside
// tx. It reports the quantity held afterwards, and applied false, changing
// nothing, when a ledger row with the same (player, key) exists. A grant
// respects the template's max stack (ErrMaxStack); a revocation never
// takes the quantity below zero (ErrNotEnoughItems). An unknown template
// is ErrUnknownItem.
func AdjustItems(ctx context.Context, tx pgx.Tx, e ItemEntry) (held int64, applied bool, err error) {
	if e.Quantity == 0 {
		return 0, false, fmt.Errorf("adjust items %s: quantity must not be 0", e.ItemTemplateID)
	}
	var maxStack int64
	err = tx.QueryRow(ctx, `SELECT max_stack FROM item_templates WHERE id = $1`, e.ItemTemplateID).Scan(&maxStack)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, ErrUnknownItem
	}
	if err != nil {
		return 0, false, fmt.Errorf("adjust items: template: %w", err)
	}
	var id uuid.UUID
	err = tx.QueryRow(ctx, `
		INSERT INTO transactions (player_id, kind, currency, amount, item_template_id, quantity, idempotency_key, reference)
		VALUES ($1, $2, '', 0, $3, $4, $5, $6)
		ON CONFLICT (player_id, idempotency_key, currency) DO NOTHING
		RETURNING id`,
		e.PlayerID, e.Kind, e.ItemTemplateID, e.Quantity, e.IdempotencyKey, e.Reference).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT COALESCE((SELECT quantity FROM inventory_items WHERE player_id = $1 AND item_template_id = $2), 0)`,
			e.PlayerID, e.ItemTemplateID).Scan(&held)
		return held, false, err
	}
	if err != nil {
		return 0, false, fmt.Errorf("adjust items: ledger: %w", err)
	}
	if e.Quantity > 0 {
		err = tx.QueryRow(ctx, `
			INSERT INTO inventory_items (player_id, item_template_id, quantity) VALUES ($1, $2, $3)
			ON CONFLICT (player_id, item_template_id) DO UPDATE
			SET quantity = inventory_items.quantity + excluded.quantity, updated_at = now()
			RETURNING quantity`, e.PlayerID, e.ItemTemplateID, e.Quantity).Scan(&held)
		if err != nil {
			return 0, false, fmt.Errorf("adjust items: inventory: %w", err)
		}
		if held > maxStack {
			return 0, false, ErrMaxStack // the caller's transaction rolls back
		}
		return held, true, nil
	}
	err = tx.QueryRow(ctx, `
		UPDATE inventory_items SET quantity = quantity - $3, equipped = (equipped AND quantity - $3 > 0), updated_at = now()
		WHERE player_id = $1 AND item_template_id = $2 AND quantity >= $3
		RETURNING quantity`, e.PlayerID, e.ItemTemplateID, -e.Quantity).Scan(&held)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, ErrNotEnoughItems
	}
	if err != nil {
		return 0, false, fmt.Errorf("adjust items: inventory: %w", err)
	}
	return held, true, nil
}
