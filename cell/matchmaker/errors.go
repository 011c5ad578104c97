package matchmaker

import (
	"errors"
	"time"
)

var (
	// ErrActiveTicket means a player of the request already has a queued or
	// matched ticket.
	ErrActiveTicket = errors.New("matchmaker: player already has an active ticket")
	// ErrNotFound means no such ticket (or it has been forgotten).
	ErrNotFound = errors.New("matchmaker: ticket not found")
	// ErrNotCancellable means the ticket left the queue (matched, ready,
	// expired or already cancelled).
	ErrNotCancellable = errors.New("matchmaker: ticket is no longer queued")
	// ErrUnknownMode means the game mode is not configured.
	ErrUnknownMode = errors.New("matchmaker: unknown game mode")
	// ErrInvalidTicket means the request is malformed (party too big, …).
	ErrInvalidTicket = errors.New("matchmaker: invalid ticket")
	// ErrLatencyTooHigh means the reported latency to this cell is above the
	// game mode's limit.
	ErrLatencyTooHigh = errors.New("matchmaker: latency to this cell too high")
	// ErrClaimLost means a match's tickets are no longer claimed for its
	// session (the janitor requeued them, or they expired): the session
	// must not start.
	ErrClaimLost = errors.New("matchmaker: tickets no longer claimed for the session")
)

// PoolFullError is returned by Join when the pool holds its cap of queued
// tickets. It is retryable after RetryAfter.
type PoolFullError struct {
	Mode       string
	RetryAfter time.Duration
}

func (e *PoolFullError) Error() string { return "matchmaker: pool " + e.Mode + " is full" }
