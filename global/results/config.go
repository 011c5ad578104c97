package results

import (
	"errors"
	"log/slog"
	"time"

	"github.com/cellgrid/cellgrid/global/achievement"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Config of the results consumer.
type Config struct {
	// Cells whose match streams are sourced from the start; AddCell adds
	// more while running (the sources the stream has are never dropped).
	Cells []string
	// Stream is the sourcing stream ("MATCH_GLOBAL"), placed in Cluster
	// ("global") with Replicas (1).
	Stream   string
	Cluster  string
	Replicas int
	// Durable consumer name ("results"); also the applied_events consumer.
	Durable string
	// AckWait (30s) before JetStream redelivers; NakDelay (1s) after a
	// failed apply.
	AckWait, NakDelay time.Duration

	// XP per match, per win and per score point.
	XPPerMatch, XPPerWin, XPPerScorePoint int64
	// Levels[i] is the total XP needed for level i+2 (level 1 needs 0);
	// ascending. Default: 100, 300, 600, 1000, 1500, 2100, 2800, 3600, 4500.
	Levels []int64
	// CurrencyPerMatch and CurrencyPerWin are credited through the ledger.
	CurrencyPerMatch, CurrencyPerWin map[string]int64
	// FlaggedInputsThreshold: a player whose FlaggedInputs exceeds it is
	// flagged (telemetry.RuleFlaggedInputs). 0 disables the rule.
	FlaggedInputsThreshold int64
}

func (c *Config) setDefaults() error {
	if c.Stream == "" {
		c.Stream = "MATCH_GLOBAL"
	}
	if c.Cluster == "" {
		c.Cluster = "global"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Durable == "" {
		c.Durable = "results"
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.NakDelay <= 0 {
		c.NakDelay = time.Second
	}
	if c.Levels == nil {
		c.Levels = []int64{100, 300, 600, 1000, 1500, 2100, 2800, 3600, 4500}
	}
	for i := 1; i < len(c.Levels); i++ {
		if c.Levels[i] <= c.Levels[i-1] {
			return errors.New("results: Levels must be ascending")
		}
	}
	for _, m := range []map[string]int64{c.CurrencyPerMatch, c.CurrencyPerWin} {
		for cur, v := range m {
			if v < 0 || cur == "" {
				return errors.New("results: currency rewards must be non-negative")
			}
		}
	}
	return nil
}

// Level returns the level for total xp.
func (c *Config) Level(xp int64) int {
	lvl := 1
	for _, need := range c.Levels {
		if xp >= need {
			lvl++
		}
	}
	return lvl
}

// Deps are the consumer's collaborators.
type Deps struct {
	DB *pgxpool.Pool
	// JS is a JetStream context on a connection to the global cluster.
	JS           jetstream.JetStream
	Leaderboards *leaderboard.Leaderboards // required
	Achievements *achievement.Achievements // nil: no achievements
	Log          *slog.Logger
	Metrics      prometheus.Registerer
}
