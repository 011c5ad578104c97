package achievement

import (
	"context"
	"errors"
	"fmt"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AnyVersion as Put's ifMatch accepts any existing version (If-Match: *).
const AnyVersion = -1

// Get returns the stored value and its version, or ErrNotFound.
func (a *Achievements) Get(ctx context.Context, player uuid.UUID, key string) ([]byte, int64, error) {
	var v []byte
	var ver int64
	err := a.db.QueryRow(ctx, `SELECT value, version FROM player_storage WHERE player_id = $1 AND storage_key = $2`,
		player, key).Scan(&v, &ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storage get %s: %w", key, err)
	}
	return v, ver, nil
}

// Create stores value under a new key (If-None-Match: *); ErrPreconditionFailed
// when the key exists, ErrTooLarge over the key quota. Returns version 1.
func (a *Achievements) Create(ctx context.Context, player uuid.UUID, key string, value []byte) (int64, error) {
	if int64(len(value)) > a.cfg.MaxValueBytes {
		return 0, ErrTooLarge
	}
	err := db.RunTx(ctx, a.db, func(ctx context.Context, tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM player_storage WHERE player_id = $1`, player).Scan(&n); err != nil {
			return err
		}
		var one int64
		err := tx.QueryRow(ctx, `INSERT INTO player_storage (player_id, storage_key, value, version)
			VALUES ($1, $2, $3, 1) ON CONFLICT (player_id, storage_key) DO NOTHING RETURNING version`,
			player, key, value).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrPreconditionFailed
		}
		if err != nil {
			return err
		}
		if n >= a.cfg.MaxKeys {
			return ErrTooLarge // rolls the insert back
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage create %s: %w", key, err)
	}
	return 1, nil
}

// Update replaces the value if its version is ifMatch (AnyVersion: any) and
// returns the new version; ErrPreconditionFailed otherwise (including a
// missing key).
func (a *Achievements) Update(ctx context.Context, player uuid.UUID, key string, value []byte, ifMatch int64) (int64, error) {
	if int64(len(value)) > a.cfg.MaxValueBytes {
		return 0, ErrTooLarge
	}
	var ver int64
	err := db.RunTx(ctx, a.db, func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE player_storage SET value = $3, version = version + 1, updated_at = now()
			WHERE player_id = $1 AND storage_key = $2 AND ($4 = -1 OR version = $4) RETURNING version`,
			player, key, value, ifMatch).Scan(&ver)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrPreconditionFailed
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage update %s: %w", key, err)
	}
	return ver, nil
}
