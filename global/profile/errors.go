package profile

import "errors"

// Sentinel errors, mapped to HTTP in handlers.go.
var (
	// ErrNotFound: no such player, or the player was erased.
	ErrNotFound = errors.New("player not found")
	// ErrUsernameTaken: another player has this username (any case).
	ErrUsernameTaken = errors.New("username taken")
)
