package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PurchaseRequest is the body of POST /store/purchase.
type PurchaseRequest struct {
	ItemTemplateID string `json:"item_template_id"`
	Quantity       int64  `json:"quantity"`
	IdempotencyKey string `json:"idempotency_key"`
	Currency       string `json:"currency,omitempty"`
}

// PurchaseResult is what a purchase returns, and what a replay returns
// again byte for byte (it is stored in the ledger row).
type PurchaseResult struct {
	TransactionID     uuid.UUID `json:"transaction_id"`
	ItemTemplateID    string    `json:"item_template_id"`
	Quantity          int64     `json:"quantity"`
	Currency          string    `json:"currency"`
	Price             int64     `json:"price"`
	Balance           int64     `json:"balance"`
	InventoryItemID   uuid.UUID `json:"inventory_item_id"`
	InventoryQuantity int64     `json:"inventory_quantity"`
	CreatedAt         time.Time `json:"created_at"`
	// Replayed is true when this result was stored by an earlier request
	// with the same idempotency key (not stored itself).
	Replayed bool `json:"replayed"`
}

// purchaseKeyPrefix separates client keys from internal ledger keys
// ("starting_grant", "match:…") in the shared unique index.
const purchaseKeyPrefix = "purchase:"

// Purchase debits the wallet, adds the items to the inventory and writes the
// ledger row, in one serializable transaction. A request whose idempotency
// key was already used returns the stored result (Replayed = true) when the
// request is the same, ErrIdempotencyMismatch when it differs.
func (s *Store) Purchase(ctx context.Context, playerID uuid.UUID, req PurchaseRequest) (PurchaseResult, error) {
	if req.Currency == "" {
		req.Currency = s.cfg.Currencies[0]
	}
	key := purchaseKeyPrefix + req.IdempotencyKey
	var res PurchaseResult
	var err error
	// Two first requests with one key race on the unique index; the loser
	// sees 40001 (retried by RunTx) or 23505: run again, it then replays.
	for attempt := 0; attempt < 3; attempt++ {
		err = db.RunTx(ctx, s.db, func(ctx context.Context, tx pgx.Tx) error {
			var e error
			res, e = s.purchaseTx(ctx, tx, playerID, key, req)
			return e
		})
		if !db.IsUniqueViolation(err) {
			break
		}
	}
	switch {
	case err == nil && res.Replayed:
		s.m.purchases.WithLabelValues("replayed").Inc()
	case err == nil:
		s.m.purchases.WithLabelValues("ok").Inc()
	case errors.Is(err, ErrInsufficientFunds):
		s.m.purchases.WithLabelValues("insufficient_funds").Inc()
	default:
		s.m.purchases.WithLabelValues("error").Inc()
	}
	if err != nil {
		return PurchaseResult{}, fmt.Errorf("purchase %s: %w", req.ItemTemplateID, err)
	}
	return res, nil
}

func (s *Store) purchaseTx(ctx context.Context, tx pgx.Tx, playerID uuid.UUID, key string, req PurchaseRequest) (PurchaseResult, error) {
	var res PurchaseResult
	// 1. Replay?
	var (
		prevCurrency, prevItem string
		prevQty                int64
		prevResult             []byte
	)
	err := tx.QueryRow(ctx, `
		SELECT currency, coalesce(item_template_id, ''), quantity, result
		FROM transactions WHERE player_id = $1 AND idempotency_key = $2 LIMIT 1`,
		playerID, key).Scan(&prevCurrency, &prevItem, &prevQty, &prevResult)
	switch {
	case err == nil:
		if prevCurrency != req.Currency || prevItem != req.ItemTemplateID || prevQty != req.Quantity || prevResult == nil {
			return res, ErrIdempotencyMismatch
		}
		if err := json.Unmarshal(prevResult, &res); err != nil {
			return res, fmt.Errorf("stored result: %w", err)
		}
		res.Replayed = true
		return res, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("replay lookup: %w", err)
	}

	// 2. Price and stack limit of record.
	var price int64
	var maxStack int64
	err = tx.QueryRow(ctx, `
		SELECT p.amount, t.max_stack FROM item_prices p
		JOIN item_templates t ON t.id = p.item_template_id
		WHERE p.item_template_id = $1 AND p.currency = $2`,
		req.ItemTemplateID, req.Currency).Scan(&price, &maxStack)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, ErrUnknownItem
	}
	if err != nil {
		return res, fmt.Errorf("price: %w", err)
	}
	if req.Quantity > maxStack {
		return res, ErrMaxStack
	}
	total := price * req.Quantity // quantity ≤ MaxQuantity, prices are config: no overflow in practice
	if total/req.Quantity != price {
		return res, fmt.Errorf("price overflow")
	}

	// 3. Debit: conditional, so the balance can never go below zero.
	var balance int64
	if total == 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO wallet_balances (player_id, currency, balance) VALUES ($1, $2, 0)
			ON CONFLICT (player_id, currency) DO NOTHING`, playerID, req.Currency); err != nil {
			return res, fmt.Errorf("wallet: %w", err)
		}
	}
	err = tx.QueryRow(ctx, `
		UPDATE wallet_balances SET balance = balance - $3, updated_at = now()
		WHERE player_id = $1 AND currency = $2 AND balance >= $3
		RETURNING balance`, playerID, req.Currency, total).Scan(&balance)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, ErrInsufficientFunds
	}
	if err != nil {
		return res, fmt.Errorf("debit: %w", err)
	}

	// 4. Inventory, respecting the max stack.
	var invID uuid.UUID
	var invQty int64
	err = tx.QueryRow(ctx, `
		INSERT INTO inventory_items (player_id, item_template_id, quantity) VALUES ($1, $2, $3)
		ON CONFLICT (player_id, item_template_id) DO UPDATE
		SET quantity = inventory_items.quantity + excluded.quantity, updated_at = now()
		RETURNING id, quantity`, playerID, req.ItemTemplateID, req.Quantity).Scan(&invID, &invQty)
	if err != nil {
		return res, fmt.Errorf("inventory: %w", err)
	}
	if invQty > maxStack {
		return res, ErrMaxStack // rolls the whole transaction back
	}

	// 5. Ledger row carrying the result, for replays.
	res = PurchaseResult{
		TransactionID:     uuid.New(),
		ItemTemplateID:    req.ItemTemplateID,
		Quantity:          req.Quantity,
		Currency:          req.Currency,
		Price:             total,
		Balance:           balance,
		InventoryItemID:   invID,
		InventoryQuantity: invQty,
		CreatedAt:         time.Now().UTC().Truncate(time.Microsecond),
	}
	stored, err := json.Marshal(res)
	if err != nil {
		return res, err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO transactions (id, player_id, kind, currency, amount, item_template_id, quantity, idempotency_key, result, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		res.TransactionID, playerID, KindPurchase, req.Currency, -total, req.ItemTemplateID, req.Quantity, key, stored, res.CreatedAt); err != nil {
		return res, fmt.Errorf("ledger: %w", err)
	}
	return res, nil
}
