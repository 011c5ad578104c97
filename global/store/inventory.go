package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// InventoryItem is one stack of a template owned by a player.
type InventoryItem struct {
	ID             uuid.UUID `json:"id"`
	ItemTemplateID string    `json:"item_template_id"`
	Name           string    `json:"name"`
	Quantity       int64     `json:"quantity"`
	Equipped       bool      `json:"equipped"`
	Tradable       bool      `json:"tradable"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Inventory lists ownerID's items for viewer: the owner sees everything;
// anyone else only when players.public_inventory is set (ErrNotFound
// otherwise, so private inventories and unknown players look the same).
func (s *Store) Inventory(ctx context.Context, viewer, ownerID uuid.UUID) ([]InventoryItem, error) {
	if viewer != ownerID {
		var public bool
		err := s.db.QueryRow(ctx, `SELECT public_inventory FROM players WHERE id = $1`, ownerID).Scan(&public)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !public) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("inventory visibility: %w", err)
		}
	}
	rows, err := s.db.Query(ctx, `
		SELECT i.id, i.item_template_id, t.name, i.quantity, i.equipped, t.tradable, i.updated_at
		FROM inventory_items i JOIN item_templates t ON t.id = i.item_template_id
		WHERE i.player_id = $1 AND i.quantity > 0
		ORDER BY i.created_at, i.id`, ownerID)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InventoryItem, error) {
		var it InventoryItem
		err := r.Scan(&it.ID, &it.ItemTemplateID, &it.Name, &it.Quantity, &it.Equipped, &it.Tradable, &it.UpdatedAt)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if items == nil {
		items = []InventoryItem{}
	}
	return items, nil
}

// Item actions.
const (
	ActionEquip   = "equip"
	ActionUnequip = "unequip"
	ActionConsume = "consume"
)

// ItemAction equips, unequips or consumes (quantity n, default 1) one of
// the player's inventory items and returns the item afterwards.
func (s *Store) ItemAction(ctx context.Context, playerID, itemID uuid.UUID, action string, n int64) (InventoryItem, error) {
	var it InventoryItem
	err := db.RunTx(ctx, s.db, func(ctx context.Context, tx pgx.Tx) error {
		var consumable, equippable bool
		err := tx.QueryRow(ctx, `
			SELECT i.id, i.item_template_id, t.name, i.quantity, i.equipped, t.tradable, i.updated_at, t.consumable, t.equippable
			FROM inventory_items i JOIN item_templates t ON t.id = i.item_template_id
			WHERE i.id = $1 AND i.player_id = $2`, itemID, playerID).
			Scan(&it.ID, &it.ItemTemplateID, &it.Name, &it.Quantity, &it.Equipped, &it.Tradable, &it.UpdatedAt, &consumable, &equippable)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var q string
		var args []any
		switch action {
		case ActionEquip, ActionUnequip:
			if !equippable || it.Quantity == 0 {
				return ErrNotAllowed
			}
			q, args = `UPDATE inventory_items SET equipped = $2, updated_at = now() WHERE id = $1
				RETURNING quantity, equipped, updated_at`, []any{itemID, action == ActionEquip}
		case ActionConsume:
			if n <= 0 {
				n = 1
			}
			if !consumable || it.Quantity < n {
				return ErrNotAllowed
			}
			q, args = `UPDATE inventory_items SET quantity = quantity - $2,
				equipped = (equipped AND quantity - $2 > 0), updated_at = now()
				WHERE id = $1 AND quantity >= $2 RETURNING quantity, equipped, updated_at`, []any{itemID, n}
		default:
			return ErrNotAllowed
		}
		if err := tx.QueryRow(ctx, q, args...).Scan(&it.Quantity, &it.Equipped, &it.UpdatedAt); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotAllowed
			}
			return err
		}
		return nil
	})
	if err != nil {
		return InventoryItem{}, fmt.Errorf("%s %s: %w", action, itemID, err)
	}
	return it, nil
}
