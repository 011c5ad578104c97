package matchmaker

import (
	"fmt"
	"time"
)

// GameMode configures one matchmaking pool.
type GameMode struct {
	// Name is the game_mode clients ask for ("duel", "squads", "ffa").
	Name string `json:"name" yaml:"name"`
	// Teams and TeamSize shape a match: duel 2×1, squads 2×4, ffa 8×1.
	Teams    int `json:"teams" yaml:"teams"`
	TeamSize int `json:"team_size" yaml:"team_size"`
	// WindowStart and WindowMax are the ± rating window of a ticket when it
	// joins and after WidenOver in the queue; it widens linearly between.
	// Two tickets may meet when each lies inside the other's window.
	WindowStart int           `json:"window_start" yaml:"window_start"`
	WindowMax   int           `json:"window_max" yaml:"window_max"`
	WidenOver   time.Duration `json:"widen_over" yaml:"widen_over"`
	// MaxSkillSpread caps max−min rating inside one match, whatever the
	// windows say. Zero means 2×WindowMax.
	MaxSkillSpread int `json:"max_skill_spread" yaml:"max_skill_spread"`
	// MaxLatency is the highest reported latency to this cell accepted.
	MaxLatency time.Duration `json:"max_latency" yaml:"max_latency"`
	// TicketTTL is how long a ticket may stay queued before it expires.
	TicketTTL time.Duration `json:"ticket_ttl" yaml:"ticket_ttl"`
	// MaxQueued caps queued tickets; Join sheds above it with PoolFullError.
	MaxQueued int `json:"max_queued" yaml:"max_queued"`
	// ResultDeadline is how long after it started a session of this mode
	// may run without a result before the cell declares it lost (the
	// match's time limit plus the time its server may need to publish
	// through an outage). Zero means the cell's SessionLiveTTL.
	ResultDeadline time.Duration `json:"result_deadline" yaml:"result_deadline"`
}

// DefaultModes are the game modes of a cell unless configured otherwise.
func DefaultModes() []GameMode {
	base := GameMode{
		WindowStart: 50, WindowMax: 200, WidenOver: 30 * time.Second,
		MaxLatency: 150 * time.Millisecond, TicketTTL: 2 * time.Minute, MaxQueued: 100_000,
	}
	duel, squads, ffa := base, base, base
	duel.Name, duel.Teams, duel.TeamSize = "duel", 2, 1
	squads.Name, squads.Teams, squads.TeamSize = "squads", 2, 4
	ffa.Name, ffa.Teams, ffa.TeamSize = "ffa", 8, 1
	return []GameMode{duel, squads, ffa}
}

// Players is the number of players in one match.
func (m GameMode) Players() int { return m.Teams * m.TeamSize }

// Window returns the ± rating window of a ticket queued for d.
func (m GameMode) Window(d time.Duration) int {
	if d <= 0 || m.WidenOver <= 0 {
		if m.WidenOver <= 0 && d > 0 {
			return m.WindowMax
		}
		return m.WindowStart
	}
	if d >= m.WidenOver {
		return m.WindowMax
	}
	return m.WindowStart + int(int64(m.WindowMax-m.WindowStart)*int64(d)/int64(m.WidenOver))
}

func (m GameMode) spreadCap() int {
	if m.MaxSkillSpread > 0 {
		return m.MaxSkillSpread
	}
	return 2 * m.WindowMax
}

// Validate checks the mode is usable.
func (m GameMode) Validate() error {
	switch {
	case m.Name == "":
		return fmt.Errorf("game mode: empty name")
	case m.Teams < 1 || m.TeamSize < 1 || m.Players() < 2:
		return fmt.Errorf("game mode %s: need at least 2 players (teams %d × size %d)", m.Name, m.Teams, m.TeamSize)
	case m.WindowStart < 0 || m.WindowMax < m.WindowStart:
		return fmt.Errorf("game mode %s: window %d→%d", m.Name, m.WindowStart, m.WindowMax)
	case m.TicketTTL <= 0 || m.MaxQueued <= 0:
		return fmt.Errorf("game mode %s: ticket TTL and max queued must be positive", m.Name)
	}
	return nil
}
