package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/db"
)

// First requests racing with one idempotency key but different bodies
// (quantity, currency): exactly one becomes a transaction; the others
// replay it (same body) or are refused as a mismatch.
func TestConcurrentFirstPurchasesOneKeyDifferentBodies(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	bodies := []store.PurchaseRequest{
		{ItemTemplateID: "sword", Quantity: 1, Currency: "gold"},
		{ItemTemplateID: "sword", Quantity: 2, Currency: "gold"},
		{ItemTemplateID: "sword", Quantity: 1, Currency: "gems"},
		{ItemTemplateID: "sword", Quantity: 3, Currency: "gems"},
	}
	for round := range 8 {
		player := grantedPlayer(t, s, pool, fmt.Sprint("racer-", round))
		key := "race-key-" + uuid.NewString()
		type outcome struct {
			req store.PurchaseRequest
			res store.PurchaseResult
			err error
		}
		out := make([]outcome, 2*len(bodies))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range out {
			req := bodies[i%len(bodies)]
			req.IdempotencyKey = key
			wg.Go(func() {
				<-start
				res, err := s.Purchase(ctx, player, req)
				out[i] = outcome{req, res, err}
			})
		}
		close(start)
		wg.Wait()

		var winner *outcome
		for i := range out {
			if o := &out[i]; o.err == nil && !o.res.Replayed {
				if winner != nil {
					t.Fatalf("round %d: two first purchases for one key: %+v and %+v", round, winner.res, o.res)
				}
				winner = o
			}
		}
		if winner == nil {
			t.Fatalf("round %d: no purchase succeeded: %+v", round, out)
		}
		for _, o := range out {
			same := o.req == winner.req
			switch {
			case o.err == nil && o.res.TransactionID != winner.res.TransactionID:
				t.Fatalf("round %d: %+v answered transaction %s, the winner's is %s", round, o.req, o.res.TransactionID, winner.res.TransactionID)
			case o.err == nil && !same:
				t.Fatalf("round %d: %+v replayed the winner's different request %+v", round, o.req, winner.req)
			case o.err != nil && (same || !errors.Is(o.err, store.ErrIdempotencyMismatch)):
				t.Fatalf("round %d: %+v: %v (winner %+v)", round, o.req, o.err, winner.req)
			}
		}
		var rows, qty int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM transactions WHERE player_id = $1 AND idempotency_key = $2`,
			player, "purchase:"+key).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(quantity), 0) FROM inventory_items WHERE player_id = $1`, player).Scan(&qty); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || qty != winner.req.Quantity {
			t.Fatalf("round %d: %d ledger rows for the key, %d swords; want 1 row and %d", round, rows, qty, winner.req.Quantity)
		}
		checkLedger(t, pool, player, "gold")
		checkLedger(t, pool, player, "gems")
	}
}

// The database itself refuses a second purchase row under one key, even in
// another currency (the ledger's own unique index includes the currency).
func TestDatabaseHoldsOnePurchasePerKey(t *testing.T) {
	s, pool := newStore(t)
	player := grantedPlayer(t, s, pool, "direct")
	ctx := context.Background()
	insert := func(currency string) error {
		return db.RunTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO transactions (player_id, kind, currency, amount, item_template_id, quantity, idempotency_key)
				VALUES ($1, 'purchase', $2, -1, 'sword', 1, 'purchase:k1')`, player, currency)
			return err
		})
	}
	if err := insert("gold"); err != nil {
		t.Fatal(err)
	}
	if err := insert("gems"); !db.IsUniqueViolation(err) {
		t.Fatalf("second purchase row with one key: %v, want a unique violation", err)
	}
	// Other kinds keep their per-currency keys (a reward in two currencies).
	for _, cur := range []string{"gold", "gems"} {
		var ok bool
		err := db.RunTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
			var err error
			ok, err = store.Credit(ctx, tx, store.Entry{PlayerID: player, Currency: cur, Amount: 1, Kind: store.KindMatchReward, IdempotencyKey: "match:m1"})
			return err
		})
		if err != nil || !ok {
			t.Fatalf("reward in %s: %v %v", cur, ok, err)
		}
	}
}
