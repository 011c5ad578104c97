package arena

import "errors"

// Errors returned by StartMatch.
var (
	// ErrBusy means a match is already running.
	ErrBusy = errors.New("arena: a match is running")
	// ErrBadAllocation means the allocation cannot be played (no players,
	// too many, duplicates, bad connect keys).
	ErrBadAllocation = errors.New("arena: bad allocation")
	// ErrClosed means the server is shut down.
	ErrClosed = errors.New("arena: server closed")
)
