package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// refreshPrefix marks cellgrid refresh tokens (secret scanners, logs).
const refreshPrefix = "cgrt_"

// newRefreshToken returns a 256-bit random token and its SHA-256 hash, the
// only form the database keeps.
func newRefreshToken() (string, []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	tok := refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, hashRefresh(tok)
}

func hashRefresh(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func insertFamily(ctx context.Context, tx pgx.Tx, playerID uuid.UUID, hash []byte, now, expires time.Time) (uuid.UUID, error) {
	fam := uuid.New()
	if _, err := tx.Exec(ctx, `INSERT INTO refresh_token_families (id, player_id, current_hash, generation, created_at, expires_at)
		VALUES ($1, $2, $3, 0, $4, $5)`, fam, playerID, hash, now, expires); err != nil {
		return uuid.Nil, fmt.Errorf("insert refresh family: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id, issued_at) VALUES ($1, $2, $3)`,
		hash, fam, now); err != nil {
		return uuid.Nil, fmt.Errorf("insert refresh token: %w", err)
	}
	return fam, nil
}

// refreshRow is a refresh token with its family, as read for a refresh or
// a logout.
type refreshRow struct {
	familyID    uuid.UUID
	usedAt      *time.Time
	playerID    uuid.UUID
	currentHash []byte
	expiresAt   time.Time
	revokedAt   *time.Time
	username    *string
}

func findRefresh(ctx context.Context, tx pgx.Tx, hash []byte) (refreshRow, error) {
	var r refreshRow
	err := tx.QueryRow(ctx, `SELECT t.family_id, t.used_at, f.player_id, f.current_hash, f.expires_at, f.revoked_at, p.username
		FROM refresh_tokens t
		JOIN refresh_token_families f ON f.id = t.family_id
		JOIN players p ON p.id = f.player_id
		WHERE t.token_hash = $1`, hash).Scan(&r.familyID, &r.usedAt, &r.playerID, &r.currentHash, &r.expiresAt, &r.revokedAt, &r.username)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrInvalidRefreshToken
	}
	if err != nil {
		return r, fmt.Errorf("find refresh token: %w", err)
	}
	return r, nil
}

func revokeFamily(ctx context.Context, tx pgx.Tx, fam uuid.UUID, now time.Time, reason string) error {
	if _, err := tx.Exec(ctx, `UPDATE refresh_token_families SET revoked_at = $2, revoke_reason = $3
		WHERE id = $1 AND revoked_at IS NULL`, fam, now, reason); err != nil {
		return fmt.Errorf("revoke refresh family: %w", err)
	}
	return nil
}

// Refresh exchanges a refresh token for a new one and a new access token.
// A token that was already exchanged revokes its whole family (the
// revocation is committed) and returns ErrRefreshTokenReused. Two requests
// racing with the same token: one wins, the other is seen as a reuse.
func (a *Auth) Refresh(ctx context.Context, token string) (Tokens, error) {
	hash := hashRefresh(token)
	next, nextHash := newRefreshToken()
	var (
		row    refreshRow
		reused bool
	)
	err := db.RunTx(ctx, a.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		reused = false
		now := a.now()
		var err error
		if row, err = findRefresh(ctx, tx, hash); err != nil {
			return err
		}
		// A rotated token is a reuse even when an earlier reuse already
		// revoked its family: every racer but the winner hears
		// ErrRefreshTokenReused (revoking again changes nothing).
		if row.usedAt != nil || !bytes.Equal(row.currentHash, hash) {
			reused = true
			return revokeFamily(ctx, tx, row.familyID, now, "reuse")
		}
		if row.revokedAt != nil || !now.Before(row.expiresAt) {
			return ErrInvalidRefreshToken
		}
		tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL`, hash, now)
		if err != nil {
			return fmt.Errorf("mark refresh token used: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return errRetry
		}
		if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id, issued_at) VALUES ($1, $2, $3)`,
			nextHash, row.familyID, now); err != nil {
			return fmt.Errorf("insert refresh token: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_token_families SET current_hash = $2, generation = generation + 1
			WHERE id = $1`, row.familyID, nextHash); err != nil {
			return fmt.Errorf("rotate refresh family: %w", err)
		}
		return nil
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if reused {
		a.log.Warn("refresh token reused: family revoked", "player_id", row.playerID, "family", row.familyID)
		return Tokens{}, fmt.Errorf("refresh: %w", ErrRefreshTokenReused)
	}
	username := ""
	if row.username != nil {
		username = *row.username
	}
	access, err := a.sign(ctx, row.playerID, username, row.familyID)
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	return Tokens{PlayerID: row.playerID, Username: username, AccessToken: access, RefreshToken: next, ExpiresIn: a.cfg.AccessTTL}, nil
}

// Logout revokes the family of refreshToken, which must belong to
// playerID. With an empty refreshToken it revokes family (the access
// token's fam claim). Revoking a revoked family is not an error.
func (a *Auth) Logout(ctx context.Context, playerID uuid.UUID, refreshToken string, family uuid.UUID) error {
	err := db.RunTx(ctx, a.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		fam, owner := family, uuid.Nil
		if refreshToken != "" {
			row, err := findRefresh(ctx, tx, hashRefresh(refreshToken))
			if err != nil {
				return err
			}
			fam, owner = row.familyID, row.playerID
		} else {
			err := tx.QueryRow(ctx, `SELECT player_id FROM refresh_token_families WHERE id = $1`, fam).Scan(&owner)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrInvalidRefreshToken
			}
			if err != nil {
				return fmt.Errorf("find refresh family: %w", err)
			}
		}
		if owner != playerID {
			return ErrNotYourToken
		}
		return revokeFamily(ctx, tx, fam, a.now(), "logout")
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}
