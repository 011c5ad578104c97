package events

import "fmt"

// CellOverflowSubject is the request subject on which a cell offers its
// game servers to matches another cell formed but could not place
// (fleet at its cap, failing, draining): an OverflowRequest in, an
// OverflowReply out. The receiving cell allocates, records and owns the
// session, and mints the players' connect tokens for its own relay.
func CellOverflowSubject(cell string) string { return fmt.Sprintf("cellgrid.cells.%s.overflow", cell) }

// OverflowRequest asks a cell to host a match formed elsewhere.
type OverflowRequest struct {
	SessionID string     `json:"session_id"`
	GameMode  string     `json:"game_mode"`
	Teams     [][]string `json:"teams"`
	// LatencyMS is each player's measured latency to the receiving cell;
	// a player above the mode's limit there makes it refuse.
	LatencyMS map[string]int `json:"latency_ms"`
	// From is the cell that formed the match.
	From string `json:"from"`
}

// OverflowReply is the receiving cell's answer; Error is set on refusal.
type OverflowReply struct {
	Error     string            `json:"error,omitempty"`
	Cell      string            `json:"cell,omitempty"`
	Region    string            `json:"region,omitempty"`
	RelayAddr string            `json:"relay_addr,omitempty"`
	GameAddr  string            `json:"game_addr,omitempty"`
	Tokens    map[string]string `json:"tokens,omitempty"` // by player id
}
