package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Role is what a caller may do on the ops routes.
type Role string

// Roles, weakest first.
const (
	RolePlayer  Role = "player"  // the game's API only; on /ops the public fleet view
	RoleSupport Role = "support" // reads: fleet detail, anti-cheat flags
	RoleAdmin   Role = "admin"   // acts: drain, grants, audit log
)

func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 2
	case RoleSupport:
		return 1
	}
	return 0
}

// AtLeast reports whether r includes min.
func (r Role) AtLeast(min Role) bool { return r.rank() >= min.rank() }

// Identity is a login identity: the OIDC issuer and subject, or issuer
// "device" and the device id of a guest login.
type Identity struct {
	Issuer  string
	Subject string
}

// Holders lists who holds a role by configuration.
type Holders struct {
	PlayerIDs  []string
	Identities []Identity
}

func (h Holders) hasPlayer(id uuid.UUID) bool { return slices.Contains(h.PlayerIDs, id.String()) }

func (h Holders) hasIdentity(ids []Identity) bool {
	for _, id := range ids {
		if slices.Contains(h.Identities, id) {
			return true
		}
	}
	return false
}

// roleOf resolves the role of player: the strongest of its configured
// roles and the role its identity provider granted at its last login.
func (o *Ops) roleOf(ctx context.Context, player uuid.UUID) (Role, error) {
	if o.cfg.Admins.hasPlayer(player) {
		return RoleAdmin, nil
	}
	best := RolePlayer
	if o.cfg.Support.hasPlayer(player) {
		best = RoleSupport
	}
	if len(o.cfg.Admins.Identities)+len(o.cfg.Support.Identities) > 0 {
		rows, err := o.deps.DB.Query(ctx, `SELECT issuer, subject FROM auth_identities WHERE player_id = $1`, player)
		if err != nil {
			return "", fmt.Errorf("role of %s: %w", player, err)
		}
		ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Identity, error) {
			var id Identity
			return id, r.Scan(&id.Issuer, &id.Subject)
		})
		if err != nil {
			return "", fmt.Errorf("role of %s: %w", player, err)
		}
		switch {
		case o.cfg.Admins.hasIdentity(ids):
			return RoleAdmin, nil
		case o.cfg.Support.hasIdentity(ids):
			best = RoleSupport
		}
	}
	var stored string
	err := o.deps.DB.QueryRow(ctx, `SELECT role FROM player_roles WHERE player_id = $1`, player).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return "", fmt.Errorf("role of %s: %w", player, err)
	case Role(stored).rank() > best.rank():
		best = Role(stored)
	}
	return best, nil
}

// OnLogin records the role an identity provider grants, from the ID
// token's Config.RolesClaim (a list of group names, or one name), inside
// the login transaction: a group in AdminGroups makes the player an admin,
// one in SupportGroups support, none removes the stored role. Device
// logins (claims == nil) leave the stored role alone.
func (o *Ops) OnLogin(ctx context.Context, tx pgx.Tx, player uuid.UUID, issuer string, claims json.RawMessage) error {
	if claims == nil || len(o.cfg.AdminGroups)+len(o.cfg.SupportGroups) == 0 {
		return nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(claims, &all); err != nil {
		return fmt.Errorf("roles claim: %w", err)
	}
	var groups []string
	if raw, ok := all[o.cfg.RolesClaim]; ok {
		if err := json.Unmarshal(raw, &groups); err != nil {
			var one string
			if json.Unmarshal(raw, &one) == nil {
				groups = []string{one}
			}
		}
	}
	role := RolePlayer
	for _, g := range groups {
		switch {
		case slices.Contains(o.cfg.AdminGroups, g):
			role = RoleAdmin
		case slices.Contains(o.cfg.SupportGroups, g) && role != RoleAdmin:
			role = RoleSupport
		}
	}
	if role == RolePlayer {
		if _, err := tx.Exec(ctx, `DELETE FROM player_roles WHERE player_id = $1`, player); err != nil {
			return fmt.Errorf("roles claim: %w", err)
		}
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO player_roles (player_id, role, source, updated_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (player_id) DO UPDATE SET role = excluded.role, source = excluded.source, updated_at = excluded.updated_at`,
		player, string(role), issuer); err != nil {
		return fmt.Errorf("roles claim: %w", err)
	}
	return nil
}

type callerKey struct{}

// caller is the verified caller of an ops route.
type caller struct {
	ID   uuid.UUID
	Role Role
}

// require wraps h: the caller needs a valid access token (401) and a role
// of at least min (403 forbidden in the JSON envelope).
func (o *Ops) require(min Role, h httpapi.Handler) http.Handler {
	return o.requireAuth(httpapi.Handle(func(w http.ResponseWriter, r *http.Request) error {
		id, err := accesstoken.Caller(r)
		if err != nil {
			return err
		}
		role, err := o.roleOf(r.Context(), id)
		if err != nil {
			return err
		}
		if !role.AtLeast(min) {
			return httpapi.Forbidden(fmt.Sprintf("the %s role is required (you are %s)", min, role))
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{ID: id, Role: role})))
	}))
}

func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// Add adds one holder written as a player id (a UUID) or as an identity
// "ISSUER|SUBJECT" (e.g. "https://idp.example|2a7f", or "device|DEVICE-ID"
// for a guest login): the form flags and configuration files use.
func (h *Holders) Add(s string) error {
	if id, err := uuid.Parse(s); err == nil {
		h.PlayerIDs = append(h.PlayerIDs, id.String())
		return nil
	}
	iss, sub, ok := strings.Cut(s, "|")
	if !ok || iss == "" || sub == "" {
		return fmt.Errorf("role holder %q: want a player id (UUID) or ISSUER|SUBJECT", s)
	}
	h.Identities = append(h.Identities, Identity{Issuer: iss, Subject: sub})
	return nil
}
