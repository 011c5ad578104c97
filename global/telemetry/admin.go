package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Register mounts GET /admin/flags?limit=&player= behind requireAuth. Only
// players listed in Config.AdminPlayerIDs may call it (403 otherwise).
func (t *Telemetry) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("GET /admin/flags", requireAuth(httpapi.Handle(t.handleFlags)))
}

func (t *Telemetry) handleFlags(w http.ResponseWriter, r *http.Request) error {
	c, ok := accesstoken.FromContext(r.Context())
	if !ok {
		return httpapi.Unauthorized("missing access token")
	}
	id, err := uuid.Parse(c.PlayerID)
	if err != nil || !t.admins[id] {
		return httpapi.Forbidden("admin only")
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return httpapi.BadRequest("invalid_limit", "limit must be 1..1000")
		}
	}
	var player *uuid.UUID
	if s := r.URL.Query().Get("player"); s != "" {
		p, err := uuid.Parse(s)
		if err != nil {
			return httpapi.BadRequest("invalid_player_id", "player must be a UUID")
		}
		player = &p
	}
	flags, err := t.Flags(r.Context(), player, limit)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"flags": flags})
	return nil
}

// Flags lists flags, newest first, optionally for one player.
func (t *Telemetry) Flags(ctx context.Context, player *uuid.UUID, limit int) ([]Flag, error) {
	rows, err := t.db.Query(ctx, `SELECT id, player_id, rule, window_start, observed, threshold, detail, created_at
		FROM player_flags WHERE ($1::UUID IS NULL OR player_id = $1)
		ORDER BY created_at DESC, id LIMIT $2`, player, limit)
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Flag, error) {
		var f Flag
		err := r.Scan(&f.ID, &f.PlayerID, &f.Rule, &f.WindowStart, &f.Observed, &f.Threshold, &f.Detail, &f.CreatedAt)
		f.WindowStart, f.CreatedAt = f.WindowStart.UTC(), f.CreatedAt.UTC()
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	if out == nil {
		out = []Flag{}
	}
	return out, nil
}
