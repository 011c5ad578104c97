package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkPurchase: full purchases (serializable db.RunTx: replay lookup,
// price, conditional debit, inventory upsert, ledger row with result) against
// a pgbench-style baseline (UPDATE balance + INSERT ledger row in a plain
// read-committed transaction), same database, same run, one wallet per worker.
func BenchmarkPurchase(b *testing.B) {
	d := testenv.NewDatabase(b)
	cfg := testConfig()
	cfg.StartingGrant = map[string]int64{"gold": 1 << 50}
	cfg.Items[0].MaxStack = 1 << 30
	s, err := store.New(cfg, store.Deps{DB: d.Pool, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	const workers = 8
	players := make([]uuid.UUID, workers)
	for i := range players {
		players[i] = grantedPlayer(b, s, d.Pool, fmt.Sprintf("bench%d", i))
	}
	ctx := context.Background()
	run := func(op func(w, i int) error) float64 {
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Go(func() {
				for i := w; i < b.N; i += workers {
					if err := op(w, i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return float64(b.N) / time.Since(start).Seconds()
	}
	b.ResetTimer()
	raw := run(func(w, i int) error {
		tx, err := d.Pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `UPDATE wallet_balances SET balance = balance - 7 WHERE player_id = $1 AND currency = 'gold'`, players[w]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO transactions (player_id, kind, currency, amount, idempotency_key) VALUES ($1, 'raw', 'gold', -7, $2)`,
			players[w], uuid.NewString()); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	full := run(func(w, i int) error {
		_, err := s.Purchase(ctx, players[w], store.PurchaseRequest{ItemTemplateID: "sword", Quantity: 1, IdempotencyKey: fmt.Sprintf("bench-%d", i)})
		return err
	})
	b.StopTimer()
	b.ReportMetric(full, "purchases/s")
	b.ReportMetric(raw, "raw_tx/s")
	b.ReportMetric(full/raw, "ratio")
}
