package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/db"
)

// lastLoginGranularity: last_login_at is only rewritten when older than
// this, so a burst of logins of one player does not serialise on its row.
const lastLoginGranularity = time.Minute

// usernameTries is how many candidate names a new player's insert tries.
const usernameTries = 8

// Device ids: long enough not to be guessed, printable, bounded.
const (
	deviceIDMinLen = 16
	deviceIDMaxLen = 128
)

// identity is who is logging in, after verification.
type identity struct {
	issuer   string
	subject  string
	provider string // "oidc" or "device"
	hints    []string
	email    string
	claims   json.RawMessage // verified ID-token claims; nil for a device
}

// Tokens is what login and refresh return.
type Tokens struct {
	PlayerID     uuid.UUID
	Username     string
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	NewPlayer    bool
}

// LoginOIDC verifies an ID token and logs its subject in.
func (a *Auth) LoginOIDC(ctx context.Context, idToken string) (Tokens, error) {
	iss, c, err := a.verifyIDToken(ctx, idToken)
	if err != nil {
		return Tokens{}, err
	}
	return a.login(ctx, oidcIdentity(iss, c))
}

// loginOIDCLimited is LoginOIDC with the per-identity limit taken between
// verifying the ID token and touching the database: only a holder of a
// valid ID token for an identity spends that identity's allowance.
func (a *Auth) loginOIDCLimited(ctx context.Context, idToken string) (Tokens, error) {
	iss, c, err := a.verifyIDToken(ctx, idToken)
	if err != nil {
		return Tokens{}, err
	}
	if a.limits != nil {
		if err := a.check(a.limits.loginIdentity, "login per identity", iss+"\x00"+c.Subject); err != nil {
			return Tokens{}, err
		}
	}
	return a.login(ctx, oidcIdentity(iss, c))
}

// LoginDevice logs a guest in by device id (when allowed).
func (a *Auth) LoginDevice(ctx context.Context, deviceID string) (Tokens, error) {
	if !a.cfg.AllowDeviceLogin {
		return Tokens{}, ErrDeviceLoginDisabled
	}
	if !validDeviceID(deviceID) {
		return Tokens{}, ErrInvalidDeviceID
	}
	return a.login(ctx, identity{issuer: deviceIssuer, subject: deviceID, provider: "device", hints: []string{"guest"}})
}

func validDeviceID(s string) bool {
	if len(s) < deviceIDMinLen || len(s) > deviceIDMaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(usernameChar(c) || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// login finds or creates the player of id, starts a refresh-token family
// and signs an access token. Creation is one transaction: player row,
// identity row, OnNewPlayer, refresh family. Concurrent first logins of one
// identity conflict on the identity's primary key; the losers' transactions
// are retried and find the winner's player.
func (a *Auth) login(ctx context.Context, id identity) (Tokens, error) {
	refresh, refreshHash := newRefreshToken()
	var (
		playerID uuid.UUID
		username string
		created  bool
		familyID uuid.UUID
	)
	err := db.RunTx(ctx, a.deps.DB, func(ctx context.Context, tx pgx.Tx) error {
		now := a.now()
		var err error
		playerID, username, created, err = a.upsertPlayer(ctx, tx, id, now)
		if err != nil {
			return err
		}
		if a.deps.OnLogin != nil {
			if err := a.deps.OnLogin(ctx, tx, playerID, id.issuer, id.claims); err != nil {
				return fmt.Errorf("on login: %w", err)
			}
		}
		familyID, err = insertFamily(ctx, tx, playerID, refreshHash, now, now.Add(a.cfg.RefreshTTL))
		return err
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("login %s: %w", id.provider, err)
	}
	if created {
		a.log.Info("new player", "player_id", playerID, "provider", id.provider)
	}
	access, err := a.sign(ctx, playerID, username, familyID)
	if err != nil {
		return Tokens{}, fmt.Errorf("login %s: %w", id.provider, err)
	}
	return Tokens{PlayerID: playerID, Username: username, AccessToken: access, RefreshToken: refresh,
		ExpiresIn: a.cfg.AccessTTL, NewPlayer: created}, nil
}

func (a *Auth) upsertPlayer(ctx context.Context, tx pgx.Tx, id identity, now time.Time) (uuid.UUID, string, bool, error) {
	var (
		playerID uuid.UUID
		username *string
		emailEnc []byte
	)
	err := tx.QueryRow(ctx, `SELECT p.id, p.username, p.email_enc
		FROM auth_identities i JOIN players p ON p.id = i.player_id
		WHERE i.issuer = $1 AND i.subject = $2`, id.issuer, id.subject).Scan(&playerID, &username, &emailEnc)
	switch {
	case err == nil:
		if err := a.touchPlayer(ctx, tx, playerID, emailEnc, id.email, now); err != nil {
			return uuid.Nil, "", false, err
		}
		name := ""
		if username != nil {
			name = *username
		}
		return playerID, name, false, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return uuid.Nil, "", false, fmt.Errorf("find identity: %w", err)
	}

	playerID = uuid.New()
	var email []byte
	if id.email != "" {
		email = a.sealer.Seal([]byte(id.email), EmailAAD(playerID))
	}
	name := ""
	for _, cand := range usernameCandidates(usernameBase(id.hints...), usernameTries) {
		tag, err := tx.Exec(ctx, `INSERT INTO players (id, username, email_enc, created_at, last_login_at)
			VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING`, playerID, cand, email, now)
		if err != nil {
			return uuid.Nil, "", false, fmt.Errorf("insert player: %w", err)
		}
		if tag.RowsAffected() == 1 {
			name = cand
			break
		}
	}
	if name == "" {
		return uuid.Nil, "", false, errors.New("insert player: no free username")
	}
	tag, err := tx.Exec(ctx, `INSERT INTO auth_identities (issuer, subject, provider, player_id, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, id.issuer, id.subject, id.provider, playerID, now)
	if err != nil {
		return uuid.Nil, "", false, fmt.Errorf("insert identity: %w", err)
	}
	if tag.RowsAffected() == 0 {
		// A concurrent login created the identity after our read (engines
		// normally report this as a serialization failure already).
		return uuid.Nil, "", false, errRetry
	}
	if a.deps.OnNewPlayer != nil {
		if err := a.deps.OnNewPlayer(ctx, tx, playerID); err != nil {
			return uuid.Nil, "", false, fmt.Errorf("on new player: %w", err)
		}
	}
	return playerID, name, true, nil
}

// touchPlayer records the login of an existing player: last_login_at
// (coarsely, see lastLoginGranularity) and the email when the provider
// reports a new one.
func (a *Auth) touchPlayer(ctx context.Context, tx pgx.Tx, playerID uuid.UUID, emailEnc []byte, email string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE players SET last_login_at = $2
		WHERE id = $1 AND (last_login_at IS NULL OR last_login_at < $3)`,
		playerID, now, now.Add(-lastLoginGranularity)); err != nil {
		return fmt.Errorf("touch player: %w", err)
	}
	if email == "" {
		return nil
	}
	if emailEnc != nil {
		if old, err := a.sealer.Open(emailEnc, EmailAAD(playerID)); err == nil && string(old) == email {
			return nil
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE players SET email_enc = $2 WHERE id = $1`,
		playerID, a.sealer.Seal([]byte(email), EmailAAD(playerID))); err != nil {
		return fmt.Errorf("update email: %w", err)
	}
	return nil
}

// sign issues an access token with the current signing key.
func (a *Auth) sign(ctx context.Context, playerID uuid.UUID, username string, familyID uuid.UUID) (string, error) {
	key, err := a.keys.signer(ctx)
	if err != nil {
		return "", err
	}
	return accesstoken.Sign(key, a.cfg.Issuer, accesstoken.Claims{
		PlayerID: playerID.String(), Username: username, Family: familyID.String(),
	}, a.now(), a.cfg.AccessTTL)
}

// errRetry makes db.RunTx retry the whole transaction, like a
// serialization failure.
var errRetry = retryErr{}

type retryErr struct{}

func (retryErr) Error() string    { return "concurrent update, retry" }
func (retryErr) SQLState() string { return "40001" }

func oidcIdentity(iss string, c idClaims) identity {
	return identity{
		issuer: iss, subject: c.Subject, provider: "oidc",
		hints: []string{c.PreferredUsername, c.Name}, email: c.Email, claims: c.raw,
	}
}
