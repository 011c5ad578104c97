package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// CatalogVersion is the catalog's current version: clients cache the
// catalog by it (GET /store/items answers it, with an ETag).
func (s *Store) CatalogVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRow(ctx, `SELECT version FROM catalog_version WHERE id = 1`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("catalog version: %w", err)
	}
	return v, nil
}

// bumpCatalogVersion adds one to the catalog version inside tx.
func bumpCatalogVersion(ctx context.Context, tx pgx.Tx) (int64, error) {
	var v int64
	err := tx.QueryRow(ctx, `INSERT INTO catalog_version (id, version, updated_at) VALUES (1, 2, now())
		ON CONFLICT (id) DO UPDATE SET version = catalog_version.version + 1, updated_at = now()
		RETURNING version`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("catalog version: %w", err)
	}
	return v, nil
}

// EditItem creates or replaces the template it.ID with its prices (a
// currency absent from it.Prices is no longer sold), marks it edited by an
// operator (seeding from configuration leaves it alone from now on) and
// bumps the catalog version, inside tx. It returns the template before
// (nil when new) and the new catalog version. When expectVersion > 0 and
// the catalog is at another version, it changes nothing and returns
// ErrVersionConflict.
func (s *Store) EditItem(ctx context.Context, tx pgx.Tx, it ItemTemplate, expectVersion int64) (*ItemTemplate, int64, error) {
	if it.ID == "" || len(it.ID) > 64 || it.Name == "" || it.MaxStack < 1 || it.MaxStack > 1_000_000 {
		return nil, 0, fmt.Errorf("%w: id, name and max_stack 1..1000000 are required", ErrInvalidItem)
	}
	for cur, amt := range it.Prices {
		if !slices.Contains(s.cfg.Currencies, cur) {
			return nil, 0, fmt.Errorf("%w: currency %q", ErrUnknownCurrency, cur)
		}
		if amt < 0 {
			return nil, 0, fmt.Errorf("%w: price in %s below zero", ErrInvalidItem, cur)
		}
	}
	if expectVersion > 0 {
		var cur int64
		if err := tx.QueryRow(ctx, `SELECT version FROM catalog_version WHERE id = 1`).Scan(&cur); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, fmt.Errorf("edit item %s: %w", it.ID, err)
		}
		if cur != expectVersion {
			return nil, 0, fmt.Errorf("edit item %s: catalog at %d, not %d: %w", it.ID, cur, expectVersion, ErrVersionConflict)
		}
	}
	var before *ItemTemplate
	var old ItemTemplate
	err := tx.QueryRow(ctx, `SELECT id, name, description, max_stack, tradable, consumable, equippable FROM item_templates WHERE id = $1`, it.ID).
		Scan(&old.ID, &old.Name, &old.Description, &old.MaxStack, &old.Tradable, &old.Consumable, &old.Equippable)
	switch {
	case err == nil:
		old.Prices = map[string]int64{}
		rows, err := tx.Query(ctx, `SELECT currency, amount FROM item_prices WHERE item_template_id = $1`, it.ID)
		if err != nil {
			return nil, 0, fmt.Errorf("edit item %s: %w", it.ID, err)
		}
		for rows.Next() {
			var c string
			var a int64
			if err := rows.Scan(&c, &a); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("edit item %s: %w", it.ID, err)
			}
			old.Prices[c] = a
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, fmt.Errorf("edit item %s: %w", it.ID, err)
		}
		before = &old
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, 0, fmt.Errorf("edit item %s: %w", it.ID, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO item_templates (id, name, description, max_stack, tradable, consumable, equippable, ops_edited)
		VALUES ($1, $2, $3, $4, $5, $6, $7, true)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
			max_stack = excluded.max_stack, tradable = excluded.tradable,
			consumable = excluded.consumable, equippable = excluded.equippable, ops_edited = true`,
		it.ID, it.Name, it.Description, it.MaxStack, it.Tradable, it.Consumable, it.Equippable); err != nil {
		return nil, 0, fmt.Errorf("edit item %s: %w", it.ID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM item_prices WHERE item_template_id = $1`, it.ID); err != nil {
		return nil, 0, fmt.Errorf("edit item %s: %w", it.ID, err)
	}
	for cur, amt := range it.Prices {
		if _, err := tx.Exec(ctx, `INSERT INTO item_prices (item_template_id, currency, amount) VALUES ($1, $2, $3)`, it.ID, cur, amt); err != nil {
			return nil, 0, fmt.Errorf("edit item %s: price %s: %w", it.ID, cur, err)
		}
	}
	v, err := bumpCatalogVersion(ctx, tx)
	if err != nil {
		return nil, 0, err
	}
	return before, v, nil
}
