package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Rules that flag players.
const (
	// RuleScoreRate: more than MaxScoreEventsPerMinute score events from one
	// player in one calendar minute (telemetry sink).
	RuleScoreRate = "score_event_rate"
	// RuleFlaggedInputs: a MatchResult reported more flagged (rejected)
	// inputs for the player than the threshold (global/results).
	RuleFlaggedInputs = "flagged_inputs"
)

// Flag is one anomaly record.
type Flag struct {
	ID          uuid.UUID `json:"id"`
	PlayerID    uuid.UUID `json:"player_id"`
	Rule        string    `json:"rule"`
	WindowStart time.Time `json:"window_start"`
	Observed    int64     `json:"observed"`
	Threshold   int64     `json:"threshold"`
	Detail      string    `json:"detail,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// FlagPlayer records f inside tx. A flag for the same (player, rule,
// window) is kept once (the first), so re-running a rule is harmless.
func FlagPlayer(ctx context.Context, tx pgx.Tx, f Flag) error {
	if _, err := tx.Exec(ctx, `INSERT INTO player_flags (player_id, rule, window_start, observed, threshold, detail)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (player_id, rule, window_start) DO NOTHING`,
		f.PlayerID, f.Rule, f.WindowStart.UTC(), f.Observed, f.Threshold, f.Detail); err != nil {
		return fmt.Errorf("flag %s %s: %w", f.PlayerID, f.Rule, err)
	}
	return nil
}
