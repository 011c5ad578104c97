package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Ledger entry kinds.
const (
	KindPurchase      = "purchase"
	KindStartingGrant = "starting_grant"
	KindMatchReward   = "match_reward"
	KindTopUp         = "topup"
	// KindOpsGrant and KindOpsRevoke are an operator's credit and debit
	// (global/ops, audited there).
	KindOpsGrant  = "ops_grant"
	KindOpsRevoke = "ops_revoke"
)

// Entry is one credit to a wallet.
type Entry struct {
	PlayerID uuid.UUID
	Currency string
	Amount   int64 // > 0
	Kind     string
	// IdempotencyKey makes the credit happen at most once per
	// (player, key, currency), e.g. "match:<session>" or "stripe:<event>".
	IdempotencyKey string
	Reference      string
}

// Credit writes entry to the ledger and adds it to the balance, inside tx
// (the caller's db.RunTx). It reports false, and changes nothing, when a
// ledger row with the same (player, key, currency) already exists. The
// player row must exist (wallet_balances references players).
func Credit(ctx context.Context, tx pgx.Tx, e Entry) (bool, error) {
	if e.Amount <= 0 {
		return false, fmt.Errorf("credit %s: amount %d must be positive", e.Kind, e.Amount)
	}
	var id uuid.UUID
	err := tx.QueryRow(ctx, `
		INSERT INTO transactions (player_id, kind, currency, amount, idempotency_key, reference)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (player_id, idempotency_key, currency) DO NOTHING
		RETURNING id`,
		e.PlayerID, e.Kind, e.Currency, e.Amount, e.IdempotencyKey, e.Reference).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("credit %s: ledger: %w", e.Kind, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO wallet_balances (player_id, currency, balance)
		VALUES ($1, $2, $3)
		ON CONFLICT (player_id, currency) DO UPDATE
		SET balance = wallet_balances.balance + excluded.balance, updated_at = now()`,
		e.PlayerID, e.Currency, e.Amount); err != nil {
		return false, fmt.Errorf("credit %s: balance: %w", e.Kind, err)
	}
	return true, nil
}

// Debit takes e.Amount (> 0) from the wallet and writes a ledger row of
// -Amount, inside tx. Like Credit it reports false, and changes nothing,
// when a row with the same (player, key, currency) exists. It returns
// ErrInsufficientFunds, changing nothing, when the balance is smaller than
// the amount: a balance never goes below zero.
func Debit(ctx context.Context, tx pgx.Tx, e Entry) (bool, error) {
	if e.Amount <= 0 {
		return false, fmt.Errorf("debit %s: amount %d must be positive", e.Kind, e.Amount)
	}
	var id uuid.UUID
	err := tx.QueryRow(ctx, `
		INSERT INTO transactions (player_id, kind, currency, amount, idempotency_key, reference)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (player_id, idempotency_key, currency) DO NOTHING
		RETURNING id`,
		e.PlayerID, e.Kind, e.Currency, -e.Amount, e.IdempotencyKey, e.Reference).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("debit %s: ledger: %w", e.Kind, err)
	}
	tag, err := tx.Exec(ctx, `
		UPDATE wallet_balances SET balance = balance - $3, updated_at = now()
		WHERE player_id = $1 AND currency = $2 AND balance >= $3`,
		e.PlayerID, e.Currency, e.Amount)
	if err != nil {
		return false, fmt.Errorf("debit %s: balance: %w", e.Kind, err)
	}
	if tag.RowsAffected() == 0 {
		return false, ErrInsufficientFunds // the caller's transaction rolls the ledger row back
	}
	return true, nil
}

// GrantStarting credits the configured starting amounts to a new player,
// inside tx (auth's player-creating transaction). Idempotent per player.
func (s *Store) GrantStarting(ctx context.Context, tx pgx.Tx, playerID uuid.UUID) error {
	for _, cur := range s.cfg.Currencies {
		amt := s.cfg.StartingGrant[cur]
		if amt <= 0 {
			continue
		}
		if _, err := Credit(ctx, tx, Entry{
			PlayerID: playerID, Currency: cur, Amount: amt,
			Kind: KindStartingGrant, IdempotencyKey: "starting_grant",
		}); err != nil {
			return fmt.Errorf("starting grant: %w", err)
		}
	}
	return nil
}

// Balances returns the player's balance per configured currency (0 when
// no row exists).
func (s *Store) Balances(ctx context.Context, playerID uuid.UUID) (map[string]int64, error) {
	out := make(map[string]int64, len(s.cfg.Currencies))
	for _, c := range s.cfg.Currencies {
		out[c] = 0
	}
	rows, err := s.db.Query(ctx, `SELECT currency, balance FROM wallet_balances WHERE player_id = $1`, playerID)
	if err != nil {
		return nil, fmt.Errorf("balances: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var b int64
		if err := rows.Scan(&c, &b); err != nil {
			return nil, fmt.Errorf("balances: %w", err)
		}
		out[c] = b
	}
	return out, rows.Err()
}
