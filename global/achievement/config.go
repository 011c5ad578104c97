package achievement

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of achievement.
const (
	KindCounter = "counter" // progress accumulates across matches (default)
	KindUnlock  = "unlock"  // unlocks when one match reaches the goal
)

// Events an achievement counts.
const (
	EventWin   = "win"   // 1 per won match
	EventMatch = "match" // 1 per match played
	EventScore = "score" // the player's match score
)

// Definition is one configured achievement.
type Definition struct {
	ID          string `json:"id" yaml:"id"`
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description"`
	Kind        string `json:"kind" yaml:"kind"`
	Event       string `json:"event" yaml:"event"`
	GameMode    string `json:"game_mode,omitempty" yaml:"game_mode"` // empty: any mode
	Goal        int64  `json:"goal" yaml:"goal"`
}

// Config of achievements and storage.
type Config struct {
	Achievements []Definition
	// MaxValueBytes bounds one storage value (16 KiB); larger is 413.
	MaxValueBytes int64
	// MaxKeys bounds the keys per player (100); more is 413.
	MaxKeys int
}

var idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (c *Config) setDefaults() error {
	if c.MaxValueBytes <= 0 {
		c.MaxValueBytes = 16 << 10
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100
	}
	seen := map[string]bool{}
	for i := range c.Achievements {
		d := &c.Achievements[i]
		if !idRe.MatchString(d.ID) || seen[d.ID] {
			return fmt.Errorf("achievement: bad or duplicate id %q", d.ID)
		}
		seen[d.ID] = true
		if d.Kind == "" {
			d.Kind = KindCounter
		}
		if d.Kind != KindCounter && d.Kind != KindUnlock {
			return fmt.Errorf("achievement %s: kind %q", d.ID, d.Kind)
		}
		if d.Event != EventWin && d.Event != EventMatch && d.Event != EventScore {
			return fmt.Errorf("achievement %s: event %q", d.ID, d.Event)
		}
		if d.Goal <= 0 {
			return fmt.Errorf("achievement %s: goal must be positive", d.ID)
		}
	}
	return nil
}

// Deps are the package's collaborators.
type Deps struct {
	DB      *pgxpool.Pool
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// Sentinel errors, mapped to HTTP in api.go.
var (
	ErrPreconditionFailed   = errors.New("precondition failed")
	ErrPreconditionRequired = errors.New("If-Match or If-None-Match required")
	ErrTooLarge             = errors.New("value or key count over the limit")
	ErrNotFound             = errors.New("not found")
)
