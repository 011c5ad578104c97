package events

import "time"

// DGSHealth is the heartbeat of one dedicated game server.
type DGSHealth struct {
	ID        string    `json:"id"`
	Cell      string    `json:"cell"`
	State     DGSState  `json:"state"`
	GameAddr  string    `json:"game_addr"` // host:port of the UDP/KCP game socket
	Version   string    `json:"version"`
	SessionID string    `json:"session_id,omitempty"`
	At        time.Time `json:"at"`
}

// Allocation is sent by the cell to a Ready DGS to start a match.
type Allocation struct {
	SessionID string     `json:"session_id"`
	GameMode  string     `json:"game_mode"`
	Players   []string   `json:"players"`         // player ids
	Teams     [][]string `json:"teams,omitempty"` // player ids per team
	// ConnectKey is the base64 Ed25519 public key the DGS must verify
	// connect tokens with (the cell's current and previous keys).
	ConnectKeys []string `json:"connect_keys"`
}

// AllocationReply answers an Allocation.
type AllocationReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// PlayerResult is one player's line in a MatchResult.
type PlayerResult struct {
	PlayerID       string `json:"player_id"`
	Team           int    `json:"team"`
	Score          int64  `json:"score"`
	FlaggedInputs  int64  `json:"flagged_inputs"`
	InputsAccepted int64  `json:"inputs_accepted"`
}

// MatchResult is published by a DGS when its match ends.
type MatchResult struct {
	SessionID  string         `json:"session_id"`
	Cell       string         `json:"cell"`
	GameMode   string         `json:"game_mode"`
	DGSID      string         `json:"dgs_id"`
	StartedAt  time.Time      `json:"started_at"`
	EndedAt    time.Time      `json:"ended_at"`
	Winner     string         `json:"winner,omitempty"` // player id; empty on a draw
	WinnerTeam int            `json:"winner_team"`      // -1 on a draw
	Players    []PlayerResult `json:"players"`
	Reason     string         `json:"reason"` // "score_limit", "time_limit", "abandoned"
}

// SessionEvent is published by the cell for match.found, session.started and
// session.ended.
type SessionEvent struct {
	Kind      string    `json:"kind"`
	SessionID string    `json:"session_id"`
	Cell      string    `json:"cell"`
	GameMode  string    `json:"game_mode"`
	Players   []string  `json:"players"`
	DGSID     string    `json:"dgs_id,omitempty"`
	At        time.Time `json:"at"`
}

// TelemetryEvent is one client- or DGS-reported event.
type TelemetryEvent struct {
	EventID   string         `json:"event_id"`
	PlayerID  string         `json:"player_id,omitempty"`
	EventType string         `json:"event_type"`
	SessionID string         `json:"session_id,omitempty"`
	Timestamp time.Time      `json:"timestamp"`
	Payload   map[string]any `json:"payload,omitempty"`
	Cell      string         `json:"cell"`
}

// TelemetryBatch is the message on a cell's telemetry subject.
type TelemetryBatch struct {
	Events []TelemetryEvent `json:"events"`
}

// Cell states in heartbeats and the topology.
const (
	CellHealthy  = "healthy"
	CellDraining = "draining"
	CellFailed   = "failed"
)

// CellHeartbeat announces a cell and its public endpoints.
type CellHeartbeat struct {
	ID     string    `json:"id"`
	Region string    `json:"region"`
	API    string    `json:"api"`
	Relay  string    `json:"relay"`
	State  string    `json:"state"` // CellHealthy or CellDraining
	At     time.Time `json:"at"`
}
