package db

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxTxAttempts bounds how often RunTx retries one transaction.
const MaxTxAttempts = 30

// RunTx runs fn in a SERIALIZABLE transaction and commits it. On a
// serialization failure (SQLSTATE 40001) or deadlock (40P01) — whether fn,
// a statement or the COMMIT itself reported it — the whole transaction is
// retried from a fresh BEGIN with jittered backoff. fn must therefore be
// safe to run more than once and must not keep side effects outside tx.
//
// Unlike crdb.ExecuteTx (SAVEPOINT cockroach_restart, which ignores the
// COMMIT's error on PostgreSQL, see FACTS.md), a transaction whose COMMIT
// failed is never reported as success. The retry loop itself is
// cockroach-go's crdb.ExecuteCtx.
func RunTx(ctx context.Context, pool *pgxpool.Pool, fn func(ctx context.Context, tx pgx.Tx) error) error {
	attempt := 0
	err := crdb.ExecuteCtx(crdb.WithMaxRetries(ctx, MaxTxAttempts-1), func(ctx context.Context, _ ...any) error {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		attempt++
		return retryable(runOnce(ctx, pool, fn))
	})
	var se *retryableErr
	if errors.As(err, &se) {
		return se.err
	}
	return err
}

func runOnce(ctx context.Context, pool *pgxpool.Pool, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// retryableErr presents a deadlock (40P01) as a serialization failure so
// crdb.ExecuteCtx retries it too.
type retryableErr struct{ err error }

func (e *retryableErr) Error() string    { return e.err.Error() }
func (e *retryableErr) Unwrap() error    { return e.err }
func (e *retryableErr) SQLState() string { return "40001" }

func retryable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
		return &retryableErr{err: err}
	}
	return err
}

// IsSerializationFailure reports whether err is a retryable transaction
// conflict (useful to callers that count conflicts).
func IsSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// IsUniqueViolation reports whether err is SQLSTATE 23505.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func backoff(ctx context.Context, attempt int) error {
	base := time.Millisecond << min(attempt, 7) // 2ms … 128ms
	d := base/2 + rand.N(base)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
