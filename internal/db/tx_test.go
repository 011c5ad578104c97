package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// writeSkew adapts RunTx to cockroach-go's own write-skew test.
type writeSkew struct{ pool *pgxpool.Pool }

func (w writeSkew) Init(ctx context.Context) error {
	_, err := w.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS skew_accounts (id INT PRIMARY KEY, balance INT NOT NULL);
		DELETE FROM skew_accounts; INSERT INTO skew_accounts VALUES (1, 100), (2, 100)`)
	return err
}

func (w writeSkew) ExecuteTx(ctx context.Context, fn func(tx any) error) error {
	return db.RunTx(ctx, w.pool, func(ctx context.Context, tx pgx.Tx) error { return fn(tx) })
}

func (w writeSkew) GetBalances(ctx context.Context, txi any) (int, int, error) {
	tx := txi.(pgx.Tx)
	var b1, b2 int
	err := tx.QueryRow(ctx, `SELECT (SELECT balance FROM skew_accounts WHERE id = 1), (SELECT balance FROM skew_accounts WHERE id = 2)`).Scan(&b1, &b2)
	return b1, b2, err
}

func (w writeSkew) UpdateBalance(ctx context.Context, txi any, acct, delta int) error {
	_, err := txi.(pgx.Tx).Exec(ctx, `UPDATE skew_accounts SET balance = balance + $1 WHERE id = $2`, delta, acct)
	return err
}

func TestRunTxCockroachGoWriteSkew(t *testing.T) {
	d := testenv.NewDatabase(t)
	if err := crdb.ExecuteTxGenericTest(context.Background(), writeSkew{d.Pool}); err != nil {
		t.Fatal(err)
	}
}

// TestRunTxNoLostWrites runs many concurrent write-skew transactions under
// SERIALIZABLE: each takes a doctor off call only if at least two are on
// call, and logs its own write. Every transaction that reports success must
// have its write in the table, and the invariant (≥ 1 on call) must hold.
func TestRunTxNoLostWrites(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	const doctors = 16
	if _, err := d.Pool.Exec(ctx, `CREATE TABLE oncall (id INT PRIMARY KEY, on_call BOOLEAN NOT NULL);
		CREATE TABLE oncall_log (id INT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < doctors; i++ {
		if _, err := d.Pool.Exec(ctx, `INSERT INTO oncall VALUES ($1, true)`, i); err != nil {
			t.Fatal(err)
		}
	}
	errNotEnough := errors.New("not enough doctors on call")
	var wg sync.WaitGroup
	var mu sync.Mutex
	succeeded := map[int]bool{}
	for i := 0; i < doctors; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			err := db.RunTx(ctx, d.Pool, func(ctx context.Context, tx pgx.Tx) error {
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM oncall WHERE on_call`).Scan(&n); err != nil {
					return err
				}
				if n < 2 {
					return errNotEnough
				}
				if _, err := tx.Exec(ctx, `UPDATE oncall SET on_call = false WHERE id = $1`, id); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO oncall_log VALUES ($1)`, id)
				return err
			})
			switch {
			case err == nil:
				mu.Lock()
				succeeded[id] = true
				mu.Unlock()
			case errors.Is(err, errNotEnough):
			default:
				t.Errorf("doctor %d: %v", id, err)
			}
		}(i)
	}
	wg.Wait()
	var onCall int
	if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM oncall WHERE on_call`).Scan(&onCall); err != nil {
		t.Fatal(err)
	}
	if onCall != 1 {
		t.Fatalf("%d doctors on call, want exactly 1 (serializable)", onCall)
	}
	if len(succeeded) != doctors-1 {
		t.Fatalf("%d transactions reported success, want %d", len(succeeded), doctors-1)
	}
	for id := range succeeded {
		var off bool
		var logged int
		if err := d.Pool.QueryRow(ctx, `SELECT NOT on_call, (SELECT count(*) FROM oncall_log WHERE id = $1) FROM oncall WHERE id = $1`, id).Scan(&off, &logged); err != nil {
			t.Fatal(err)
		}
		if !off || logged != 1 {
			t.Errorf("doctor %d reported success but its write is missing (off=%v logged=%d)", id, off, logged)
		}
	}
}

func TestRunTxReturnsFnError(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	want := fmt.Errorf("domain rule")
	calls := 0
	err := db.RunTx(ctx, d.Pool, func(ctx context.Context, tx pgx.Tx) error {
		calls++
		if _, err := tx.Exec(ctx, `INSERT INTO item_templates (id, name) VALUES ('x', 'X')`); err != nil {
			return err
		}
		return want
	})
	if !errors.Is(err, want) || calls != 1 {
		t.Fatalf("err=%v calls=%d, want domain error once", err, calls)
	}
	var n int
	_ = d.Pool.QueryRow(ctx, `SELECT count(*) FROM item_templates WHERE id = 'x'`).Scan(&n)
	if n != 0 {
		t.Fatal("rolled-back write is visible")
	}
}
