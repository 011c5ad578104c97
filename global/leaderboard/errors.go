package leaderboard

import "errors"

// Sentinel errors, mapped to HTTP in api.go.
var (
	// ErrUnknownBoard: no leaderboard with that id is configured.
	ErrUnknownBoard = errors.New("unknown leaderboard")
	// ErrNotRanked: the player has no record on the board (around=…).
	ErrNotRanked = errors.New("player not ranked")
	// ErrBadRegion: region given for a global board, or unknown.
	ErrBadRegion = errors.New("region not valid for this leaderboard")
	// ErrUnknownSeason: a season after the board's current one.
	ErrUnknownSeason = errors.New("no such season")
)
