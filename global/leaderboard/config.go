package leaderboard

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/hashicorp/cronexpr"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
)

// Sort orders.
const (
	OrderDesc = "desc" // higher is better (default)
	OrderAsc  = "asc"  // lower is better (e.g. lap times)
)

// Operators: how a new score combines with the record.
const (
	OpBest = "best" // keep the best (default)
	OpSet  = "set"  // replace
	OpIncr = "incr" // add (non-negative increments only)
)

// Scopes.
const (
	ScopeGlobal   = "global"   // one board (default)
	ScopeRegional = "regional" // one global board plus one per region
)

// Metrics a match result feeds into a board (used by global/results).
const (
	MetricScore   = "score"   // the player's match score (default)
	MetricWins    = "wins"    // 1 for a win, 0 otherwise
	MetricMatches = "matches" // 1 per match played
)

// Definition is one configured leaderboard.
type Definition struct {
	ID       string `yaml:"id"`
	Order    string `yaml:"order"`    // OrderDesc when empty
	Operator string `yaml:"operator"` // OpBest when empty
	// ResetSchedule is a cron expression (hashicorp/cronexpr syntax, e.g.
	// "0 0 * * 1" for Mondays 00:00 UTC); empty never resets.
	ResetSchedule string `yaml:"reset_schedule"`
	Scope         string `yaml:"scope"`     // ScopeGlobal when empty
	Metric        string `yaml:"metric"`    // MetricScore when empty
	GameMode      string `yaml:"game_mode"` // only results of this mode; empty = all

	cron *cronexpr.Expression
}

// Config of the leaderboards.
type Config struct {
	Boards []Definition
	// Regions maps a cell id to its region; a cell not listed is its own
	// region.
	Regions map[string]string
	// DefaultLimit (20) and MaxLimit (100) bound ?limit=.
	DefaultLimit, MaxLimit int
	// KeyPrefix of the Redis keys. Default "lb".
	KeyPrefix string
	// UsernameTTL (1m) and UsernameCacheSize (100000) bound the username cache.
	UsernameTTL       time.Duration
	UsernameCacheSize int
	// SeasonTTL is how long a board's current season is cached (2s).
	SeasonTTL time.Duration
	// ResetCheckInterval is how often Run looks for due resets (5s).
	ResetCheckInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

var idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (c *Config) setDefaults() error {
	if c.DefaultLimit <= 0 {
		c.DefaultLimit = 20
	}
	if c.MaxLimit <= 0 {
		c.MaxLimit = 100
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "lb"
	}
	if c.UsernameTTL <= 0 {
		c.UsernameTTL = time.Minute
	}
	if c.UsernameCacheSize <= 0 {
		c.UsernameCacheSize = 100000
	}
	if c.SeasonTTL <= 0 {
		c.SeasonTTL = 2 * time.Second
	}
	if c.ResetCheckInterval <= 0 {
		c.ResetCheckInterval = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	seen := map[string]bool{}
	for i := range c.Boards {
		d := &c.Boards[i]
		if !idRe.MatchString(d.ID) || seen[d.ID] {
			return fmt.Errorf("leaderboard: bad or duplicate id %q", d.ID)
		}
		seen[d.ID] = true
		def := func(s *string, v string, allowed ...string) error {
			if *s == "" {
				*s = v
			}
			for _, a := range allowed {
				if *s == a {
					return nil
				}
			}
			return fmt.Errorf("leaderboard %s: %q not one of %v", d.ID, *s, allowed)
		}
		for _, err := range []error{
			def(&d.Order, OrderDesc, OrderDesc, OrderAsc),
			def(&d.Operator, OpBest, OpBest, OpSet, OpIncr),
			def(&d.Scope, ScopeGlobal, ScopeGlobal, ScopeRegional),
			def(&d.Metric, MetricScore, MetricScore, MetricWins, MetricMatches),
		} {
			if err != nil {
				return err
			}
		}
		if d.ResetSchedule != "" {
			e, err := cronexpr.Parse(d.ResetSchedule)
			if err != nil {
				return fmt.Errorf("leaderboard %s: reset schedule: %w", d.ID, err)
			}
			d.cron = e
		}
	}
	return nil
}

// Deps are the leaderboards' collaborators.
type Deps struct {
	DB      *pgxpool.Pool
	Redis   rueidis.Client
	Log     *slog.Logger
	Metrics prometheus.Registerer // nil: not exported
}
