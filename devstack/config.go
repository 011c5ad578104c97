package devstack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/global/achievement"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/payment"
	"github.com/cellgrid/cellgrid/global/results"
	"github.com/cellgrid/cellgrid/global/store"
)

// DefaultMatchTimeLimit is a dev stack's match length: long enough to play,
// short enough that `cellgrid bots` finishes a demo in well under a minute.
// The DGS's own default (`cellgrid dgs --time-limit`) stays at production's
// 3 minutes.
const DefaultMatchTimeLimit = 30 * time.Second

// dgsArgs are the flags every DGS of the stack gets after DGSCommand.
func (cfg *Config) dgsArgs() []string {
	args := slices.Clone(cfg.DGSCommand[1:]) // e.g. the "dgs" subcommand
	switch {
	case cfg.MatchTimeLimit == 0:
		args = append(args, "--time-limit="+DefaultMatchTimeLimit.String())
	case cfg.MatchTimeLimit > 0:
		args = append(args, "--time-limit="+cfg.MatchTimeLimit.String())
	}
	// Later flags win: DGSArgs may override the time limit.
	return append(args, cfg.DGSArgs...)
}

// loadOrCreateKey returns the 32-byte key stored hex-encoded at path,
// creating it on first use so a restarted dev stack can still read what it
// sealed.
func loadOrCreateKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("dev key %s: want 64 hex characters", path)
		}
		return k, nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("dev key %s: %w", path, err)
	}
	return k, nil
}

// DevStore is the catalog and starting grant of a dev stack.
func DevStore() store.Config {
	return store.Config{
		Currencies:    []string{"gold", "gems"},
		StartingGrant: map[string]int64{"gold": 1000},
		Items: []store.ItemTemplate{
			{ID: "potion", Name: "Health potion", Prices: map[string]int64{"gold": 50}, MaxStack: 20, Consumable: true},
			{ID: "sword", Name: "Iron sword", Prices: map[string]int64{"gold": 300, "gems": 5}, MaxStack: 1, Tradable: true, Equippable: true},
		},
	}
}

// DevGlobal is the global layer's game configuration in a dev stack:
// catalog, boards, achievements and rewards a player can see move.
func DevGlobal() global.Config {
	return global.Config{
		Store: DevStore(),
		Leaderboards: leaderboard.Config{Boards: []leaderboard.Definition{
			{ID: "score", Operator: leaderboard.OpBest, Scope: leaderboard.ScopeRegional},
			{ID: "wins", Operator: leaderboard.OpIncr, Metric: leaderboard.MetricWins, ResetSchedule: "0 0 * * 1"},
		}},
		Achievements: achievement.Config{Achievements: []achievement.Definition{
			{ID: "first_win", Name: "First blood", Kind: achievement.KindUnlock, Event: achievement.EventWin, Goal: 1},
			{ID: "ten_duels", Name: "Duelist", Kind: achievement.KindCounter, Event: achievement.EventWin, GameMode: "duel", Goal: 10},
			{ID: "regular", Name: "Regular", Kind: achievement.KindCounter, Event: achievement.EventMatch, Goal: 25},
		}},
		Results: results.Config{
			XPPerMatch: 10, XPPerWin: 50, XPPerScorePoint: 1,
			Levels:           []int64{0, 100, 250, 500, 1000, 2000, 4000},
			CurrencyPerMatch: map[string]int64{"gold": 10},
			CurrencyPerWin:   map[string]int64{"gold": 25},
		},
		Payment: payment.Config{StripeWebhookSecret: "whsec_cellgrid_dev"},
	}
}
